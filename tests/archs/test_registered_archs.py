"""Checks every architecture the plugin registers must pass, each run on its ``tiny_config``
(``gimsanet_arch.archs.arch_info``) in 1 and 3 channels: odd input sizes (padded to the arch's
``pad_multiple``, which must be needed and enough), a finite gradient for every parameter,
``build_network`` from an option dict, a state_dict round trip, and ``torch.export`` (marked
``export``: the export lane, ``python -m pytest -m export``, runs it; docs/testing.md).

Arch-specific behaviour (equality with the official code, counts, switches) stays in the per-arch
test files.
"""
import inspect
import io

import pytest
import torch
import torch.nn.functional as F

import gimsanet_arch  # noqa: F401  (registers the plugin's archs)
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from gimsanet_arch.archs.arch_info import arch_info

PLUGIN_ARCHS = sorted(name for name, cls in ARCH_REGISTRY if cls.__module__.startswith('gimsanet_arch.'))
CHANNELS = (1, 3)
ODD_SIZE = (19, 23)


def _kwargs(name, channels):
    """The tiny configuration with ``channels`` in and out."""
    cls, info = ARCH_REGISTRY.get(name), arch_info(name)
    kwargs = dict(info.tiny_config, **{info.in_channels_arg: channels})
    if 'out_channels' in inspect.signature(cls).parameters:
        kwargs['out_channels'] = channels
    return kwargs


def _build(name, channels, seed=0):
    torch.manual_seed(seed)
    return ARCH_REGISTRY.get(name)(**_kwargs(name, channels))


def _odd_input(name, channels, batch=2):
    """A 19x23 image, reflect-padded (right/bottom) to the arch's multiple as the callers do."""
    x = torch.rand(batch, channels, *ODD_SIZE)
    m = arch_info(name).pad_multiple
    return F.pad(x, (0, -ODD_SIZE[1] % m, 0, -ODD_SIZE[0] % m), mode='reflect')


def _perturb(net):
    """Move every parameter off its initial value, so zero-initialised scales (NAFNet's beta and
    gamma) and constant norms take part in the outputs being compared."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


arch_and_channels = pytest.mark.parametrize('name,channels', [(n, c) for n in PLUGIN_ARCHS for c in CHANNELS])


def test_plugin_archs_are_registered_and_describe_themselves():
    assert {'GIMSANet', 'Restormer', 'NAFNet', 'NAFNetLocal'} <= set(PLUGIN_ARCHS)
    for name in PLUGIN_ARCHS:
        cls = ARCH_REGISTRY.get(name)
        assert cls.__name__ == name
        # declared by the class itself, not guessed by arch_info
        # (a wrong in_channels_arg makes the constructor raise in the tests below)
        assert all(hasattr(cls, key) for key in ('pad_multiple', 'in_channels_arg', 'tiny_config')), name


@arch_and_channels
def test_odd_size_keeps_the_shape(name, channels):
    net = _build(name, channels).eval()
    x = _odd_input(name, channels)
    multiple = arch_info(name).pad_multiple
    with torch.no_grad():
        if multiple > 1:  # the declared multiple is needed ...
            with pytest.raises(RuntimeError):
                net(torch.rand(1, channels, *ODD_SIZE))
        assert x.shape[-2:] == tuple(s + -s % multiple for s in ODD_SIZE)
        assert net(x).shape == x.shape  # ... and enough


@arch_and_channels
def test_every_parameter_gets_a_finite_gradient(name, channels):
    net = _build(name, channels).train()
    x = _odd_input(name, channels).requires_grad_()
    net(x).square().mean().backward()
    assert torch.isfinite(x.grad).all()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, f'{name}: no gradient for {missing}'
    bad = [n for n, p in net.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f'{name}: non-finite gradient for {bad}'


@arch_and_channels
def test_build_network_from_an_option_dict(name, channels):
    torch.manual_seed(0)
    net = build_network({'type': name, **_kwargs(name, channels)})
    assert type(net) is ARCH_REGISTRY.get(name)
    direct = _build(name, channels)
    assert [(k, v.shape) for k, v in net.state_dict().items()] == \
        [(k, v.shape) for k, v in direct.state_dict().items()]


@arch_and_channels
def test_state_dict_round_trip(name, channels):
    saved = _perturb(_build(name, channels, seed=0)).eval()
    fresh = _build(name, channels, seed=1).eval()
    x = _odd_input(name, channels, batch=1)
    with torch.no_grad():
        expected = saved(x)
        assert not torch.allclose(fresh(x), expected)  # the load below has something to do
    buf = io.BytesIO()
    torch.save({'params': saved.state_dict()}, buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True)['params'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), expected, rtol=0, atol=0)


@pytest.mark.export
@arch_and_channels
def test_torch_export_reproduces_eager(name, channels):
    net = _perturb(_build(name, channels)).eval()
    x = _odd_input(name, channels, batch=1)
    with torch.no_grad():
        exported = torch.export.export(net, (x, ))
        torch.testing.assert_close(exported.module()(x), net(x), rtol=1e-5, atol=1e-6)
