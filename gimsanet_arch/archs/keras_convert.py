"""Convert the official Keras GIMSANet weights (HDF5) into a BasicSR checkpoint for ``GIMSANet``.

Input: the file ``model.save_weights('x.h5')`` writes from the official model-building code (TF2 /
Keras 2 HDF5 layout: a root attribute ``layer_names``, one group per layer with an attribute
``weight_names``). A full-model ``model.save('x.h5')`` file also works (its ``model_weights`` group has
the same layout). Keras 3's ``.weights.h5`` layout is not supported. Needs only h5py, no TensorFlow.

Layers are matched **by order**, not by name: Keras names layers by a session-wide counter
(``conv2d_17``), so names depend on what else was built before. The order that Keras 2 writes for the
official functional model is fixed by the graph (layers sorted by depth), see ``keras_weight_order``:

1. the nested head model ``block21_layer``: h0, then the two fixed gradient convs Gh, Gv;
2. f1 .. f7 and the fuse conv f8;
3. the MSAB **interleaved by depth**: stage 0 of the k=2,3,4,5 branches, then stage 1 of each, ...
   (stage 0 = f, 1 = a, 2..6 = the dilated convs, 7 = the sigmoid conv);
4. t1, t2, t3.

Every kernel and bias is checked against the shape the port expects; the first mismatch raises
``KerasWeightsMismatchError`` naming the Keras weight, the torch parameter and both shapes. The fixed
gradient kernels are not stored in the torch checkpoint (they are non-persistent buffers), but they are
checked against the port's kernels so that a file whose map the port would not reproduce is refused.
"""
from collections import OrderedDict

import numpy as np
import torch

from gimsanet_arch.archs.gimsanet_arch import MSAB_DILATIONS, GIMSANet
from gimsanet_arch.archs.gradient_util import gradient_kernels

GRAD_H = '<fixed gradient Gh>'
GRAD_V = '<fixed gradient Gv>'


class KerasWeightsMismatchError(ValueError):
    """The HDF5 file does not hold the official GIMSANet layout for the requested configuration."""


def _msab_stage_names(branch_index):
    names = ['feat', 'attn_in'] + [f'attn_dilated.{i}' for i in range(len(MSAB_DILATIONS))] + ['attn_out']
    return [f'msab.{branch_index}.{n}' for n in names]


def keras_weight_order(in_channels=3, num_feat=49, msab_kernels=(2, 3, 4, 5)):
    """``[(torch_module_name, keras_kernel_shape), ...]`` in the order Keras 2 writes the official model.

    ``keras_kernel_shape`` is ``(kh, kw, cin, cout)``; each entry is followed by a bias ``(cout,)`` in the
    file. The gradient convs appear under the ``GRAD_H`` / ``GRAD_V`` pseudo-names.
    """
    head = num_feat + 1  # h0 output + gradient channel
    c, w = in_channels, num_feat
    order = [('head_conv', (3, 3, c, w)), (GRAD_H, (3, 3, c, 1)), (GRAD_V, (3, 3, c, 1)),
             ('feat_conv1', (3, 3, head, w))]
    order += [(f'feat_conv{i}', (3, 3, w, w)) for i in range(2, 7)]
    order += [('feat_conv7', (3, 3, w, head)), ('fuse_conv', (3, 3, 2 * head, w))]
    stages = [_msab_stage_names(b) for b in range(len(msab_kernels))]
    for stage in range(len(stages[0])):
        order += [(stages[b][stage], (k, k, w, w)) for b, k in enumerate(msab_kernels)]
    order += [('tail_conv1', (3, 3, w, head)), ('tail_conv2', (3, 3, head, head)),
              ('tail_conv3', (3, 3, head, c))]
    return order


def _decode(values):
    return [v.decode('utf8') if isinstance(v, bytes) else str(v) for v in values]


def read_keras_h5_weights(path):
    """All weights of a Keras 2 HDF5 weights file, in file order: ``[(layer/weight name, array), ...]``."""
    import h5py

    with h5py.File(path, 'r') as f:
        root = f['model_weights'] if 'model_weights' in f else f
        if 'layer_names' not in root.attrs:
            raise KerasWeightsMismatchError(
                f'{path}: no "layer_names" attribute, so this is not a Keras 2 HDF5 weights file '
                '(write it with tf.keras 2.x model.save_weights("x.h5"); Keras 3 .weights.h5 is not supported)')
        weights = []
        for layer in _decode(root.attrs['layer_names']):
            group = root[layer]
            for name in _decode(group.attrs.get('weight_names', [])):
                weights.append((f'{layer}/{name}', np.asarray(group[name])))
    return weights


def _official_fixed_kernels(in_channels):
    """The port's fixed kernels (Gh, Gv) in Keras layout (3, 3, C, 1)."""
    weight, _ = gradient_kernels(in_channels, 'official')  # (2, C, 3, 3)
    keras = weight.permute(2, 3, 1, 0).numpy()  # (3, 3, C, 2)
    return keras[..., :1], keras[..., 1:]


def convert_keras_weights(weights, in_channels=3):
    """Map ``read_keras_h5_weights`` output to a ``GIMSANet(in_channels)`` state_dict (float32 tensors)."""
    order = keras_weight_order(in_channels)
    fixed = dict(zip((GRAD_H, GRAD_V), _official_fixed_kernels(in_channels)))
    expected = []
    for module, kshape in order:
        expected.append((module, 'weight', tuple(kshape)))
        expected.append((module, 'bias', (kshape[-1],)))

    state = OrderedDict()
    for index, (module, role, shape) in enumerate(expected):
        target = f'{module}.{role}'
        if index >= len(weights):
            raise KerasWeightsMismatchError(
                f'the file ends after {len(weights)} weights; expected {len(expected)} '
                f'(first missing: {target}, Keras shape {shape})')
        keras_name, array = weights[index]
        if tuple(array.shape) != shape:
            raise KerasWeightsMismatchError(
                f'Keras weight #{index} "{keras_name}" does not fit {target}: expected shape {shape}, '
                f'found {tuple(array.shape)} (is this the official GIMSANet with in_channels={in_channels}?)')
        if module in fixed:
            reference = fixed[module] if role == 'weight' else np.zeros(shape, np.float32)
            if not np.array_equal(array.astype(np.float32), reference):
                raise KerasWeightsMismatchError(
                    f'Keras weight #{index} "{keras_name}" ({module} {role}) differs from the official fixed '
                    'gradient kernel, which the port hard-codes; this file cannot be reproduced')
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        # Keras kernel (kh, kw, cin, cout) -> torch (cout, cin, kh, kw)
        state[target] = tensor.permute(3, 2, 0, 1).contiguous() if role == 'weight' else tensor
    if len(weights) > len(expected):
        extra = weights[len(expected)][0]
        raise KerasWeightsMismatchError(
            f'the file has {len(weights)} weights, expected {len(expected)}; first extra: "{extra}"')
    return state


def convert_keras_h5(path, in_channels=3, check_model=True):
    """Read ``path`` and return the state_dict; with ``check_model`` also load it strictly into GIMSANet."""
    state = convert_keras_weights(read_keras_h5_weights(path), in_channels)
    if check_model:
        GIMSANet(in_channels=in_channels).load_state_dict(state, strict=True)
    return state


def convert_keras_h5_to_checkpoint(h5_path, out_path, in_channels=3):
    """Write a BasicSR checkpoint ``{'params': state_dict}`` (loadable with ``param_key_g: params``)."""
    state = convert_keras_h5(h5_path, in_channels)
    torch.save({'params': state}, out_path)
    return state
