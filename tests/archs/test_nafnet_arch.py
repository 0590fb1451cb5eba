"""NAFNet / NAFNetLocal: equality with the official implementation (megvii-research/NAFNet) on
stored references (tests/fixtures/nafnet/, see ``official_fixtures``: layer-norm weights/biases and
the block scales beta/gamma set non-zero so they matter; NAFNetLocal fixtures also hold the pooling
windows the official TLC conversion chose), the official configurations' layouts and counts, and
the official custom autograd LayerNorm (``layernorm2d.pt``: its forward and hand-written backward).

The checks every registered arch gets (odd sizes, gradients, build_network, state_dict round trip,
export) are in test_registered_archs.py.
"""
import inspect
import os
import sys

import pytest
import torch
import torch.nn as nn

from gimsanet_arch.archs.nafnet_arch import LayerNorm2d, NAFNet, NAFNetLocal
from gimsanet_arch.archs.tlc_util import LocalAvgPool2d

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from official_fixtures import (ATOL, bf16_outputs, load_fixture, max_diff_from_official, num_params,  # noqa: E402
                               official_configs, state_dict_layout, with_official_weights)

CASES = ['color_w8', 'gray_w4', 'odd_19x23', 'defaults', 'local_w8', 'local_fast_w8', 'local_gray_odd']


def _build(ref):
    cls = NAFNetLocal if ref['arch'] == 'NAFNetLocal' else NAFNet
    return cls(**ref['kwargs'])


def test_official_signature_defaults():
    params = inspect.signature(NAFNet.__init__).parameters
    expected = dict(img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[])
    assert list(params)[1:] == list(expected)
    assert {k: params[k].default for k in expected} == expected
    local = inspect.signature(NAFNetLocal.__init__).parameters
    assert local['train_size'].default == (1, 3, 256, 256)
    assert local['fast_imp'].default is False


@pytest.mark.parametrize('name', CASES)
def test_matches_official_output(name):
    ref = load_fixture('nafnet', name)
    net = _build(ref)
    out, diff = max_diff_from_official(net, ref)
    print(f'{ref["arch"]}[{name}] {ref["kwargs"]} input {tuple(ref["input"].shape)} '
          f'max abs diff vs official: {diff:.3g}')
    assert out.shape == ref['output'].shape == ref['input'].shape
    assert diff <= ATOL
    if 'kernel_sizes' in ref:
        pools = [m for m in net.modules() if isinstance(m, LocalAvgPool2d)]
        assert [list(p.kernel_size) for p in pools] == ref['kernel_sizes']


@pytest.mark.parametrize('config', sorted(official_configs('nafnet')))
def test_state_dict_keys_and_shapes_equal_official(config):
    ref = official_configs('nafnet')[config]
    with torch.device('meta'):
        net = NAFNet(**ref['kwargs'])
    assert state_dict_layout(net) == ref['state_dict']
    n = num_params(net)
    print(f'NAFNet {config}: {n:,} parameters (official {ref["num_params"]:,})')
    assert n == ref['num_params']


def test_published_parameter_counts():
    sidd = dict(middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])
    with torch.device('meta'):
        n32 = num_params(NAFNet(width=32, **sidd))
        n64 = num_params(NAFNet(width=64, **sidd))
    print(f'NAFNet SIDD width 32: {n32:,}; width 64: {n64:,}')
    # counted on the official code (megvii-research/NAFNet NAFNet_arch.py)
    assert n32 == 29_159_715
    assert n64 == 115_982_915


def test_layernorm2d_forward_backward_match_official_function():
    ref = load_fixture('nafnet', 'layernorm2d')
    ln = LayerNorm2d(ref['x'].shape[1], eps=ref['eps'])
    with torch.no_grad():
        ln.weight.copy_(ref['weight'])
        ln.bias.copy_(ref['bias'])
    x = ref['x'].clone().requires_grad_()
    y = ln(x)
    y.backward(ref['grad_output'])
    diffs = {
        'y': (y - ref['y']).abs().max().item(),
        'grad_x': (x.grad - ref['grad_x']).abs().max().item(),
        'grad_weight': (ln.weight.grad - ref['grad_weight']).abs().max().item(),
        'grad_bias': (ln.bias.grad - ref['grad_bias']).abs().max().item(),
    }
    print('LayerNorm2d max abs diff vs official autograd Function:', diffs)
    assert all(d <= 1e-5 for d in diffs.values()), diffs


def test_layernorm2d_gradcheck_and_no_custom_function():
    ln = LayerNorm2d(3).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 3, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(ln, (x, ))
    assert ln(x).grad_fn.name() != 'LayerNormFunctionBackward'


def test_odd_size_padding_and_crop():
    net = NAFNet(width=4, enc_blk_nums=[1, 1, 1], dec_blk_nums=[1, 1, 1])
    assert net.padder_size == 8
    assert net(torch.rand(1, 3, 19, 23)).shape == (1, 3, 19, 23)


def test_local_equals_global_up_to_base_size():
    """Inputs no larger than 1.5x train size pool over the whole map: NAFNetLocal == NAFNet."""
    kw = dict(width=4, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    base = NAFNet(**kw).eval()
    local = NAFNetLocal(**kw, train_size=(1, 3, 16, 16))
    for name, p in base.named_parameters():  # non-zero beta/gamma so blocks matter
        if name.endswith(('beta', 'gamma')):
            torch.nn.init.normal_(p, std=0.5)
    local.load_state_dict(base.state_dict(), strict=True)
    assert not local.training  # left in eval mode, as in the release
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in local.modules())
    x_small, x_big = torch.rand(1, 3, 24, 20), torch.rand(1, 3, 40, 36)
    with torch.no_grad():
        assert torch.allclose(local(x_small), base(x_small), atol=1e-6)
        assert not torch.allclose(local(x_big), base(x_big), atol=1e-4)


def test_local_gray_with_default_train_size_channels():
    # the release's conversion feeds a train_size (3-channel) tensor; ours needs no forward
    net = NAFNetLocal(img_channel=1, width=4, enc_blk_nums=[1], dec_blk_nums=[1], train_size=(1, 3, 8, 8))
    assert net(torch.rand(1, 1, 30, 20)).shape == (1, 1, 30, 20)


@pytest.mark.parametrize('name', ['color_w8', 'local_w8'])
def test_bf16_autocast_and_cast(name):
    ref = load_fixture('nafnet', name)
    net = with_official_weights(_build(ref), ref)
    x = ref['input']
    for y in bf16_outputs(net, x):
        assert y.shape == x.shape and torch.isfinite(y.float()).all()
        assert (y.float() - ref['output']).abs().max() < 0.1
