"""The architecture and its constructor arguments, read from a state_dict's keys and shapes.

Every hyper-parameter that shapes a weight is in the file: ``gimsanet-denoise --weights X.pth`` needs
no ``--arch`` or ``--arch-args`` for GIMSANet, NAFNet and Restormer files (BasicSR-wrapped or bare,
``module.``-prefixed or not). What no weight records keeps its default and can be given with
``--arch-args``: GIMSANet's ``negative_slope``, the kind of gradient map (``official``, or a Sobel
variant) and ``grad_scale``; NAFNet's test-time local converter (``--arch NAFNetLocal`` with its
``train_size``).

This module's name does not end in ``_arch.py``, so the registry scan of ``archs/`` skips it.
"""
import re

#: what each detector looks for, for the message when nothing matches
SIGNATURES = {
    'GIMSANet': ('head_conv.weight', 'feat_conv1.weight', 'msab.0.feat.weight'),
    'Restormer': ('patch_embed.proj.weight', 'encoder_level1.0.attn.temperature', 'output.weight'),
    'NAFNet': ('intro.weight', 'ending.weight', 'middle_blks.0.conv1.weight'),
}


class UnknownArchitecture(ValueError):
    """No known architecture's keys are in the state_dict (the message lists what was looked for)."""


def _count(sd, prefix):
    """Number of consecutive ``<prefix>.<i>.`` blocks in ``sd``."""
    found = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r'\.(\d+)\.', k)] if m}
    return max(found) + 1 if found else 0


def _gimsanet(sd):
    head, feat1, tail = sd['head_conv.weight'], sd['feat_conv1.weight'], sd['tail_conv3.weight']
    num_feat, head_width = int(feat1.shape[0]), int(feat1.shape[1])
    n_grad = head_width - int(head.shape[0])
    if n_grad not in (0, 1):
        raise UnknownArchitecture(f'GIMSANet keys, but head_conv has {head.shape[0]} outputs and feat_conv1 '
                                  f'{head_width} inputs: not a GIMSANet layout')
    args = {'in_channels': int(head.shape[1]), 'num_feat': num_feat,
            'grad_mode': 'official' if n_grad else 'none',
            'msab_kernels': [int(sd[f'msab.{i}.feat.weight'].shape[-1]) for i in range(_count(sd, 'msab'))],
            'attention_gate': 'msab.0.attn_in.weight' in sd}
    if int(tail.shape[0]) != args['in_channels']:
        args['out_channels'] = int(tail.shape[0])
    if head_width != num_feat + n_grad:
        args['head_width'] = head_width
    return args


def _restormer(sd):
    embed = sd['patch_embed.proj.weight']
    dim = int(embed.shape[0])
    levels = ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')
    hidden = int(sd['encoder_level1.0.ffn.project_in.weight'].shape[0]) // 2
    # int(dim * factor) is the hidden width; the published 2.66 gives 127 for dim 48, not 2.6458...
    factor = 2.66 if int(dim * 2.66) == hidden else hidden / dim
    return {'inp_channels': int(embed.shape[1]), 'out_channels': int(sd['output.weight'].shape[0]), 'dim': dim,
            'num_blocks': [_count(sd, level) for level in levels],
            'num_refinement_blocks': _count(sd, 'refinement'),
            'heads': [int(sd[f'{level}.0.attn.temperature'].shape[0]) for level in levels],
            'ffn_expansion_factor': factor, 'bias': 'encoder_level1.0.attn.qkv.bias' in sd,
            'LayerNorm_type': 'WithBias' if 'encoder_level1.0.norm1.body.bias' in sd else 'BiasFree',
            'dual_pixel_task': 'skip_conv.weight' in sd}


def _nafnet(sd):
    intro = sd['intro.weight']
    return {'img_channel': int(intro.shape[1]), 'width': int(intro.shape[0]),
            'middle_blk_num': _count(sd, 'middle_blks'),
            'enc_blk_nums': [_count(sd, f'encoders.{i}') for i in range(_count(sd, 'encoders'))],
            'dec_blk_nums': [_count(sd, f'decoders.{i}') for i in range(_count(sd, 'decoders'))]}


_DETECTORS = {'GIMSANet': _gimsanet, 'Restormer': _restormer, 'NAFNet': _nafnet}


def detect(state_dict):
    """``(arch name, constructor arguments)`` of a bare state_dict (``module.`` prefixes allowed).

    Raises:
        UnknownArchitecture: naming the keys each known architecture was looked for by.
    """
    sd = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state_dict.items()}
    matches = [name for name, keys in SIGNATURES.items() if all(k in sd for k in keys)]
    if len(matches) != 1:
        looked = '; '.join(f'{name}: {", ".join(keys)}' for name, keys in SIGNATURES.items())
        what = 'several architectures' if matches else 'no known architecture'
        raise UnknownArchitecture(f'the weights match {what} (looked for {looked}); give --arch and --arch-args')
    return matches[0], _DETECTORS[matches[0]](sd)
