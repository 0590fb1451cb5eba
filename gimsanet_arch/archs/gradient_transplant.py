"""Give trained no-branch GIMSANet weights (``grad_mode: none``) a gradient branch without changing
what the network computes, so that a run with the branch and a run without it can fine-tune from
the same starting function.

With the branch, the head ``h = cat[g, h0]`` has one more channel (the gradient map ``g``, first) and
every conv that reads ``h`` (or a tensor with ``h``'s layout) has one more input channel; every conv
whose output is added to ``h`` has one more output channel. The new weights are all zero:

* ``feat_conv7``, ``tail_conv1``, ``tail_conv2`` produce 0 in the new channel, so after each
  ``+ h`` that channel carries ``g`` unchanged;
* ``feat_conv1``, ``fuse_conv`` (twice: ``u`` and ``h``), ``tail_conv2``, ``tail_conv3`` read the new
  channel with zero weights, so ``g`` does not reach the output yet.

The network therefore gives exactly the no-branch output, and training can grow the zero weights
that read ``g``: their gradients are not zero (``tests/archs/test_gradient_transplant.py``).
"""
import torch

# convs whose input has h's layout: (name, [positions of a head block in the input channels])
_READ_HEAD = {'feat_conv1': 1, 'fuse_conv': 2, 'tail_conv2': 1, 'tail_conv3': 1}
# convs whose output is added to h
_WRITE_HEAD = ('feat_conv7', 'tail_conv1', 'tail_conv2')


def add_gradient_branch(state_dict):
    """The state_dict of the same network with a gradient branch (``head_width`` + 1), from the
    state_dict of a ``grad_mode: none`` GIMSANet. Raises ValueError for anything else."""
    if 'head_conv.weight' not in state_dict or 'feat_conv1.weight' not in state_dict:
        raise ValueError('not a GIMSANet state_dict (no head_conv/feat_conv1 weights)')
    head = state_dict['head_conv.weight'].shape[0]
    if state_dict['feat_conv1.weight'].shape[1] != head:
        raise ValueError('these weights already have a gradient branch (feat_conv1 reads '
                         f'{state_dict["feat_conv1.weight"].shape[1]} channels, head_conv gives {head})')
    out = {k: v.clone() for k, v in state_dict.items()}
    for name, blocks in _READ_HEAD.items():
        weight = out[f'{name}.weight']
        parts = weight.split(head, dim=1)
        if len(parts) != blocks or any(p.shape[1] != head for p in parts):
            raise ValueError(f'{name}.weight reads {weight.shape[1]} channels, expected {blocks} x {head}')
        zero = weight.new_zeros(weight.shape[0], 1, *weight.shape[2:])
        out[f'{name}.weight'] = torch.cat([t for p in parts for t in (zero, p)], dim=1)
    for name in _WRITE_HEAD:
        weight, bias = out[f'{name}.weight'], out[f'{name}.bias']
        out[f'{name}.weight'] = torch.cat([weight.new_zeros(1, *weight.shape[1:]), weight], dim=0)
        out[f'{name}.bias'] = torch.cat([bias.new_zeros(1), bias])
    return out
