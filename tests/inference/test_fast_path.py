"""The engine's fast path (channels_last, bf16 autocast where native, optional torch.compile) against
the plain path (contiguous float32 forward): same outputs within the dtype's tolerance, for the tiny
configurations of GIMSANet, Restormer and NAFNet and for the official references (the Keras
GIMSANet fixture, the official Restormer/NAFNet fixtures), which still match through the fast path.

Tolerances: float32 channels_last vs contiguous max abs <= 1e-5; bf16 autocast vs float32: the
PSNR of the difference, with the float32 output's range as peak, >= 45 dB (measured 55.8-66.6 dB
on the fixtures below)."""
import copy
import math
import os
import sys

import numpy as np
import pytest
import torch

import gimsanet_arch  # noqa: F401  (registers the archs)
from basicsr.archs import build_network
from gimsanet_arch.archs.arch_info import arch_info
from gimsanet_arch.inference import engine

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'archs'))
from official_fixtures import ATOL, FIXTURES, load_fixture, with_official_weights  # noqa: E402

FP32_ATOL = 1e-5  # channels_last vs contiguous, float32
BF16_MIN_PSNR = 45.  # dB, bf16 autocast vs float32, peak = the float32 output's range
ARCHS = ['GIMSANet', 'Restormer', 'NAFNet']
RESTORMER_CASES = ['color_biasfree', 'gray_withbias', 'dual_pixel', 'dim6_heads']
NAFNET_CASES = ['color_w8', 'gray_w4', 'odd_19x23', 'defaults', 'local_w8', 'local_fast_w8', 'local_gray_odd']


def psnr_of_difference(out, ref):
    peak = (ref.max() - ref.min()).item()
    return 10 * math.log10(peak ** 2 / ((out - ref) ** 2).mean().item())


def plain(net, x, multiple=1):
    """The reference: the network as it is (contiguous weights and input), float32, no autocast."""
    with torch.no_grad():
        return engine.forward_padded(net, x, multiple)


def tiny_net(arch, in_ch=3, seed=0):
    torch.manual_seed(seed)
    info = arch_info(arch)
    return build_network({'type': arch, info.in_channels_arg: in_ch, **info.tiny_config}).eval()


# ----------------------------------------------------------------------------- the API
def test_resolve_dtype(monkeypatch):
    assert engine.resolve_dtype('fp32', 'cpu') is torch.float32
    assert engine.resolve_dtype('BF16', 'cpu') is torch.bfloat16
    assert engine.resolve_dtype(torch.bfloat16, 'cpu') is torch.bfloat16
    monkeypatch.setattr(engine, 'bf16_supported', lambda device: True)
    assert engine.resolve_dtype('auto', 'cpu') is torch.bfloat16
    assert engine.resolve_dtype(None, 'cpu') is torch.bfloat16  # run's default is auto
    monkeypatch.setattr(engine, 'bf16_supported', lambda device: False)
    assert engine.resolve_dtype('auto', 'cpu') is torch.float32
    with pytest.raises(ValueError, match='fp16.*auto, fp32, bf16'):
        engine.resolve_dtype('fp16', 'cpu')
    with pytest.raises(ValueError, match='float16'):
        engine.resolve_dtype(torch.float16, 'cpu')


def test_prepare_network_is_idempotent_and_reversible():
    net = tiny_net('GIMSANet').train()
    ready = engine.prepare_network(net)
    assert ready is net and not net.training
    assert net.head_conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not net.head_conv.weight.is_contiguous()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert engine.prepare_network(ready) is net
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    engine.prepare_network(net, channels_last=False)
    assert net.head_conv.weight.is_contiguous()
    compiled = engine.prepare_network(net, compile=True)  # lazy: nothing is compiled until it is called
    assert compiled is not net and compiled._orig_mod is net
    assert engine.prepare_network(compiled, compile=True) is compiled  # not wrapped twice
    assert net.head_conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert engine.prepare_network(len) is len  # not a module: untouched


@pytest.mark.parametrize('in_ch', [1, 3])
def test_run_defaults_are_channels_last_and_auto_dtype(in_ch):
    seen = {}

    def net(x):
        seen.update(channels_last=x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last),
                    autocast=torch.is_autocast_enabled('cpu'))
        return x * 2

    img = torch.rand(1, in_ch, 10, 12)
    out = engine.run(net, img)
    assert seen['channels_last'], 'a gray image must reach the net with channels_last strides too'
    assert seen['autocast'] == (engine.resolve_dtype('auto', 'cpu') == torch.bfloat16)
    assert out.dtype == torch.float32 and out.is_contiguous() and torch.equal(out, img * 2)
    with torch.autocast('cpu', dtype=torch.bfloat16):  # fp32 is forced even inside an autocast region
        engine.run(net, img, dtype='fp32', channels_last=False)
    assert seen == {'channels_last': False, 'autocast': False}


# ----------------------------------------------------------------------------- same outputs
@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('in_ch', [1, 3])
def test_fp32_channels_last_equals_the_plain_path(arch, in_ch):
    net = tiny_net(arch, in_ch)
    multiple = arch_info(arch).pad_multiple
    x = torch.rand(2, in_ch, 29, 27)
    ref = plain(net, x, multiple)
    fast = engine.run(engine.prepare_network(copy.deepcopy(net)), x, multiple, dtype='fp32')
    assert fast.shape == ref.shape and fast.shape[-2:] == x.shape[-2:]
    assert (fast - ref).abs().max().item() <= FP32_ATOL
    # contiguous weights with a channels_last input (the validation loop leaves the weights as trained)
    assert (engine.run(net, x, multiple, dtype='fp32') - ref).abs().max().item() <= FP32_ATOL
    # tiles and the self-ensemble on the fast path too
    for options in (dict(tile=20, overlap=6), dict(ensemble=True)):
        fast = engine.run(net, x[:1], multiple, dtype='fp32', **options)
        assert (fast - engine.run(net, x[:1], multiple, dtype='fp32', channels_last=False, **options)
                ).abs().max().item() <= FP32_ATOL


@pytest.mark.parametrize('arch', ARCHS)
def test_bf16_is_close_to_fp32(arch):
    net = engine.prepare_network(tiny_net(arch))
    x = torch.rand(1, 3, 32, 40)
    fp32 = engine.run(net, x, arch_info(arch).pad_multiple, dtype='fp32')
    bf16 = engine.run(net, x, arch_info(arch).pad_multiple, dtype='bf16')
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert psnr_of_difference(bf16, fp32) >= BF16_MIN_PSNR


# ----------------------------------------------------------------------------- official references
def test_keras_reference_through_the_fast_path():
    """tests/scripts/test_convert_keras.py's equality (<= 1e-4 vs Keras), through the engine."""
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    from gimsanet_arch.archs.keras_convert import convert_keras_h5
    folder = os.path.join(FIXTURES, 'gimsanet_keras')
    net = GIMSANet().eval()
    net.load_state_dict(convert_keras_h5(os.path.join(folder, 'gimsanet_color_random.h5')), strict=True)
    x = torch.from_numpy(np.load(os.path.join(folder, 'input.npy'))).permute(0, 3, 1, 2).contiguous()
    keras = torch.from_numpy(np.load(os.path.join(folder, 'output.npy'))).permute(0, 3, 1, 2)
    ref = plain(net, x)
    ready = engine.prepare_network(net)
    fp32 = engine.run(ready, x, dtype='fp32')
    assert (fp32 - keras).abs().max().item() < 1e-4
    assert (fp32 - ref).abs().max().item() <= FP32_ATOL
    assert psnr_of_difference(engine.run(ready, x, dtype='bf16'), fp32) >= BF16_MIN_PSNR


@pytest.mark.parametrize('arch,case', [('restormer', c) for c in RESTORMER_CASES] +
                         [('nafnet', c) for c in NAFNET_CASES])
def test_official_references_through_the_fast_path(arch, case):
    """The official-output equality of test_restormer_arch.py / test_nafnet_arch.py (<= ATOL), through the engine."""
    ref = load_fixture(arch, case)
    name = ref.get('arch', 'Restormer' if arch == 'restormer' else 'NAFNet')
    net = engine.prepare_network(with_official_weights(build_network({'type': name, **ref['kwargs']}), ref))
    fp32 = engine.run(net, ref['input'], dtype='fp32')
    assert (fp32 - ref['output']).abs().max().item() <= ATOL
    assert psnr_of_difference(engine.run(net, ref['input'], dtype='bf16'), fp32) >= BF16_MIN_PSNR


@pytest.mark.slow
def test_compiled_network_equals_eager():
    """torch.compile (inductor; on CPU it builds C++ with the system compiler) changes no number beyond fp32 noise."""
    net = tiny_net('GIMSANet')
    x = torch.rand(1, 3, 24, 20)
    eager = engine.run(net, x, dtype='fp32')
    compiled = engine.prepare_network(copy.deepcopy(net), compile=True)
    assert (engine.run(compiled, x, dtype='fp32') - eager).abs().max().item() <= FP32_ATOL
    assert psnr_of_difference(engine.run(compiled, x, dtype='bf16'), eager) >= BF16_MIN_PSNR
