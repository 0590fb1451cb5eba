"""Restormer: equality with the official implementation (swz30/Restormer) on stored references
(tests/fixtures/restormer/, see ``official_fixtures``: layer-norm weights/biases and attention
temperatures perturbed so they matter) and the official configurations' layouts and counts.

The checks every registered arch gets (odd sizes, gradients, build_network, state_dict round trip,
export) are in test_registered_archs.py.
"""
import inspect
import os
import sys

import pytest
import torch

from gimsanet_arch.archs.restormer_arch import Restormer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from official_fixtures import (ATOL, bf16_outputs, load_fixture, max_diff_from_official, num_params,  # noqa: E402
                               official_configs, state_dict_layout, with_official_weights)

CASES = ['color_biasfree', 'gray_withbias', 'dual_pixel', 'dim6_heads']


def _tiny(**kw):
    cfg = dict(dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 2, 4])
    cfg.update(kw)
    return Restormer(**cfg)


def test_official_signature_defaults():
    params = inspect.signature(Restormer.__init__).parameters
    expected = dict(
        inp_channels=3,
        out_channels=3,
        dim=48,
        num_blocks=[4, 6, 6, 8],
        num_refinement_blocks=4,
        heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.66,
        bias=False,
        LayerNorm_type='WithBias',
        dual_pixel_task=False)
    assert list(params)[1:] == list(expected)
    assert {k: params[k].default for k in expected} == expected


@pytest.mark.parametrize('name', CASES)
def test_matches_official_output(name):
    ref = load_fixture('restormer', name)
    out, diff = max_diff_from_official(Restormer(**ref['kwargs']), ref)
    print(f'Restormer[{name}] {ref["kwargs"]} max abs diff vs official: {diff:.3g}')
    assert out.shape == ref['output'].shape
    assert diff <= ATOL


@pytest.mark.parametrize('config', sorted(official_configs('restormer')))
def test_state_dict_keys_and_shapes_equal_official(config):
    ref = official_configs('restormer')[config]
    with torch.device('meta'):  # no memory, no init cost
        net = Restormer(**ref['kwargs'])
    assert state_dict_layout(net) == ref['state_dict']
    n = num_params(net)
    print(f'Restormer {config}: {n:,} parameters (official {ref["num_params"]:,})')
    assert n == ref['num_params']


def test_default_parameter_count():
    with torch.device('meta'):
        n_default = num_params(Restormer())
        n_denoise = num_params(Restormer(LayerNorm_type='BiasFree'))
    print(f'Restormer default (WithBias): {n_default:,}; BiasFree denoising config: {n_denoise:,}')
    # counted on the official code (swz30/Restormer restormer_arch.py)
    assert n_default == 26_126_644
    assert n_denoise == 26_111_668


def test_dual_pixel_has_skip_conv_and_no_global_residual():
    net = _tiny(inp_channels=6, out_channels=3, dual_pixel_task=True)
    assert 'skip_conv.weight' in net.state_dict()
    assert 'skip_conv.weight' not in _tiny().state_dict()
    out = net(torch.rand(1, 6, 16, 16))
    assert out.shape == (1, 3, 16, 16)


def test_bias_free_layernorm_has_no_bias():
    keys = _tiny(LayerNorm_type='BiasFree').state_dict()
    assert 'encoder_level1.0.norm1.body.weight' in keys
    assert 'encoder_level1.0.norm1.body.bias' not in keys
    assert 'encoder_level1.0.norm1.body.bias' in _tiny().state_dict()


def test_bf16_autocast_and_cast():
    ref = load_fixture('restormer', 'color_biasfree')
    net = with_official_weights(Restormer(**ref['kwargs']), ref)
    for y in bf16_outputs(net, ref['input']):
        assert y.shape == ref['output'].shape and torch.isfinite(y.float()).all()
        assert (y.float() - ref['output']).abs().max() < 0.1
