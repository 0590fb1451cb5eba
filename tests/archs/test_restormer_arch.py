"""Restormer: equality with the official implementation (swz30/Restormer) on stored references.

Fixtures in tests/fixtures/restormer/ were produced by the official code (outside this repo) with
seeded random weights (layer-norm weights/biases and attention temperatures perturbed so they
matter): each holds the constructor kwargs, the state_dict, an input and the official output.
``official_configs.json`` lists the official state_dict keys/shapes and parameter counts of the
published configurations.
"""
import inspect
import json
import os

import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from gimsanet_arch.archs.restormer_arch import Restormer

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures', 'restormer')
CASES = ['color_biasfree', 'gray_withbias', 'dual_pixel', 'dim6_heads']
ATOL = 1e-5


def _load(name):
    return torch.load(os.path.join(FIX, f'{name}.pt'), map_location='cpu', weights_only=True)


def _tiny(**kw):
    cfg = dict(dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 2, 4])
    cfg.update(kw)
    return Restormer(**cfg)


def test_registered():
    assert ARCH_REGISTRY.get('Restormer') is Restormer


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
    ref = _load(name)
    net = Restormer(**ref['kwargs'])
    net.load_state_dict(ref['state_dict'], strict=True)
    net.eval()
    with torch.no_grad():
        out = net(ref['input'])
    diff = (out - ref['output']).abs().max().item()
    print(f'Restormer[{name}] {ref["kwargs"]} max abs diff vs official: {diff:.3g}')
    assert out.shape == ref['output'].shape
    assert diff <= ATOL


def test_build_network_from_options():
    from basicsr.archs import build_network
    ref = _load('color_biasfree')
    net = build_network(dict(type='Restormer', **ref['kwargs']))
    net.load_state_dict(ref['state_dict'], strict=True)
    assert isinstance(net, Restormer)


def _configs():
    with open(os.path.join(FIX, 'official_configs.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('config', sorted(_configs()))
def test_state_dict_keys_and_shapes_equal_official(config):
    ref = _configs()[config]
    with torch.device('meta'):  # no memory, no init cost
        net = Restormer(**ref['kwargs'])
    ours = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    assert ours == ref['state_dict']
    n = sum(p.numel() for p in net.parameters())
    print(f'Restormer {config}: {n:,} parameters (official {ref["num_params"]:,})')
    assert n == ref['num_params']


def test_default_parameter_count():
    with torch.device('meta'):
        n_default = sum(p.numel() for p in Restormer().parameters())
        n_denoise = sum(p.numel() for p in Restormer(LayerNorm_type='BiasFree').parameters())
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


def test_backward_fp32():
    net = _tiny()
    x = torch.rand(2, 3, 16, 8, requires_grad=True)
    net(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters())


def test_bf16_autocast_and_cast():
    ref = _load('color_biasfree')
    net = Restormer(**ref['kwargs'])
    net.load_state_dict(ref['state_dict'])
    net.eval()
    x = ref['input']
    with torch.no_grad():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y_auto = net(x)
        y_cast = net.to(torch.bfloat16)(x.to(torch.bfloat16))
    for y in (y_auto, y_cast):
        assert y.shape == ref['output'].shape and torch.isfinite(y.float()).all()
        assert (y.float() - ref['output']).abs().max() < 0.1


def test_torch_export():
    net = _tiny().eval()
    x = torch.rand(1, 3, 16, 16)
    exported = torch.export.export(net, (x, ))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), net(x), atol=1e-6)
