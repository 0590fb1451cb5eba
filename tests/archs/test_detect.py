"""Architecture and arguments read from the weights: construct -> state_dict -> detect -> the same
arguments -> strict load, for every plugin architecture in several configurations, wrapped or bare."""
import os

import pytest
import torch

import gimsanet_arch  # noqa: F401  (registries)
from basicsr.utils.registry import ARCH_REGISTRY
from gimsanet_arch.archs.detect import UnknownArchitecture, detect
from gimsanet_arch.training.checkpoint import extract_state_dict

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures')

CONFIGS = [
    ('GIMSANet', {'in_channels': 3, 'num_feat': 6, 'grad_mode': 'official', 'msab_kernels': [2, 3, 4, 5],
                  'attention_gate': True}),
    ('GIMSANet', {'in_channels': 1, 'num_feat': 5, 'grad_mode': 'none', 'msab_kernels': [3],
                  'attention_gate': False}),
    ('GIMSANet', {'in_channels': 3, 'num_feat': 4, 'grad_mode': 'official', 'msab_kernels': [5, 2],
                  'attention_gate': True, 'head_width': 9}),
    ('NAFNet', {'img_channel': 3, 'width': 8, 'middle_blk_num': 2, 'enc_blk_nums': [1, 2], 'dec_blk_nums': [1, 1]}),
    ('NAFNet', {'img_channel': 1, 'width': 4, 'middle_blk_num': 1, 'enc_blk_nums': [], 'dec_blk_nums': []}),
    ('Restormer', {'inp_channels': 3, 'out_channels': 3, 'dim': 8, 'num_blocks': [1, 2, 1, 2],
                   'num_refinement_blocks': 1, 'heads': [1, 2, 4, 8], 'ffn_expansion_factor': 2.66, 'bias': False,
                   'LayerNorm_type': 'WithBias', 'dual_pixel_task': False}),
    ('Restormer', {'inp_channels': 1, 'out_channels': 1, 'dim': 6, 'num_blocks': [1, 1, 1, 1],
                   'num_refinement_blocks': 2, 'heads': [1, 1, 2, 2], 'ffn_expansion_factor': 2.0, 'bias': True,
                   'LayerNorm_type': 'BiasFree', 'dual_pixel_task': False}),
]


def _same(found, given):
    for key, value in given.items():
        if isinstance(value, float):
            assert found[key] == pytest.approx(value), key
        else:
            assert found[key] == (list(value) if isinstance(value, tuple) else value), key


@pytest.mark.parametrize('arch, args', CONFIGS, ids=[f'{a}-{i}' for i, (a, _) in enumerate(CONFIGS)])
@pytest.mark.parametrize('wrap', ['bare', 'params', 'params_ema+module'])
def test_round_trip(arch, args, wrap):
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get(arch)(**args)
    sd = net.state_dict()
    if wrap == 'params':
        ckpt = {'params': sd}
    elif wrap == 'params_ema+module':
        ckpt = {'params_ema': {f'module.{k}': v for k, v in sd.items()}, 'params': sd}
    else:
        ckpt = sd
    found_arch, found = detect(extract_state_dict(ckpt, 'ckpt', 'params_ema'))
    assert found_arch == arch
    _same(found, args)
    rebuilt = ARCH_REGISTRY.get(arch)(**found)
    rebuilt.load_state_dict(sd, strict=True)


@pytest.mark.parametrize('arch, case', [('Restormer', 'color_biasfree'), ('NAFNet', 'color_w8')])
def test_official_fixture_files(arch, case):
    ref = torch.load(os.path.join(FIXTURES, arch.lower(), f'{case}.pt'), map_location='cpu', weights_only=True)
    found_arch, found = detect(ref['state_dict'])
    assert found_arch == arch
    _same(found, {k: v for k, v in ref['kwargs'].items() if k in found})
    ARCH_REGISTRY.get(arch)(**found).load_state_dict(ref['state_dict'], strict=True)


def test_unknown_weights_list_what_was_looked_for():
    with pytest.raises(UnknownArchitecture) as err:
        detect({'conv.weight': torch.zeros(1)})
    for arch in ('GIMSANet', 'Restormer', 'NAFNet'):
        assert arch in str(err.value)
    assert 'give --arch' in str(err.value)
