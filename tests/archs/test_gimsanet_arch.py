"""GIMSANet port: structure, padding, counts, switches, dtypes, serialisation
(docs/gimsanet-spec.md#layer-conventions, docs/gimsanet-spec.md#architecture and
docs/gimsanet-spec.md#size-and-cost)."""
import io
import warnings

import pytest
import torch
import torch.nn.functional as F

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from gimsanet_arch.archs.gimsanet_arch import GIMSANet, MSABBranch, SameConv2d, same_padding
from gimsanet_arch.archs.gradient_util import gradient_map


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


@pytest.fixture(scope='module')
def net3():
    torch.manual_seed(0)
    return GIMSANet().eval()


# ----------------------------------------------------------------------------- registry and counts
def test_registered_and_buildable():
    assert ARCH_REGISTRY.get('GIMSANet') is GIMSANet
    net = build_network({'type': 'GIMSANet', 'in_channels': 1, 'num_feat': 8})
    assert isinstance(net, GIMSANet) and net.in_channels == 1


def test_exact_parameter_counts():
    assert n_params(GIMSANet(in_channels=3)) == 1_282_813
    assert n_params(GIMSANet(in_channels=1)) == 1_281_029


def test_parameter_split_matches_spec_table(net3):
    table = {'head_conv': 1372, 'feat_conv1': 22_099, 'feat_conv2': 21_658, 'feat_conv3': 21_658,
             'feat_conv4': 21_658, 'feat_conv5': 21_658, 'feat_conv6': 21_658, 'feat_conv7': 22_100,
             'fuse_conv': 44_149, 'msab': 1_038_800, 'tail_conv1': 22_100, 'tail_conv2': 22_550, 'tail_conv3': 1353}
    for name, count in table.items():
        assert n_params(getattr(net3, name)) == count, name
    for branch, count in zip(net3.msab, (77_224, 173_264, 307_720, 480_592)):
        assert n_params(branch) == count
    assert n_params(GIMSANet(in_channels=1).head_conv) == 490
    assert n_params(GIMSANet(in_channels=1).tail_conv3) == 451


def test_keras_default_init(net3):
    for m in net3.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.bias.abs().max() == 0
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert m.weight.abs().max() <= bound
            assert m.weight.abs().max() > 0.9 * bound  # uniform over the whole glorot range


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize('c', [3, 1])
@pytest.mark.parametrize('hw', [(13, 17), (24, 24), (1, 1), (2, 5), (6, 1)])
def test_output_shape_equals_input_shape(c, hw):
    net = GIMSANet(in_channels=c, num_feat=4).eval()
    x = torch.rand(2, c, *hw)
    with torch.no_grad():
        assert net(x).shape == x.shape


@pytest.mark.parametrize('c', [3, 1])
def test_full_width_odd_size(c):
    net = GIMSANet(in_channels=c).eval()
    x = torch.rand(1, c, 15, 21)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_out_channels_and_bad_args():
    assert GIMSANet(in_channels=1, out_channels=1, num_feat=4)(torch.rand(1, 1, 5, 5)).shape == (1, 1, 5, 5)
    with pytest.raises(ValueError, match='out_channels'):
        GIMSANet(in_channels=3, out_channels=1)
    with pytest.raises(ValueError, match='grad_mode'):
        GIMSANet(grad_mode='prewitt')
    with pytest.raises(ValueError):
        GIMSANet(msab_kernels=())


# ------------------------------------------------- padding (table in docs/gimsanet-spec.md#layer-conventions)
SPEC_TABLE = {(2, 1): (0, 1), (2, 2): (1, 1), (2, 3): (1, 2), (3, 1): (1, 1), (3, 2): (2, 2), (3, 3): (3, 3),
              (4, 1): (1, 2), (4, 2): (3, 3), (4, 3): (4, 5), (5, 1): (2, 2), (5, 2): (4, 4), (5, 3): (6, 6)}


@pytest.mark.parametrize('k,d', sorted(SPEC_TABLE))
def test_same_padding_table(k, d):
    assert same_padding(k, d) == SPEC_TABLE[(k, d)]


@pytest.mark.parametrize('k,d', sorted(SPEC_TABLE))
@pytest.mark.parametrize('explicit', [False, True])
def test_same_conv_matches_torch_same_and_explicit_pad(k, d, explicit):
    # float64: the two paths may use different fp32 kernels (different summation order) on some CPUs
    # (AVX2 without AVX-512), while a wrong padding moves the output by ~0.1
    torch.manual_seed(k * 10 + d)
    conv = SameConv2d(2, 3, k, d, explicit_pad=explicit).double()
    x = torch.rand(1, 2, 9, 12, dtype=torch.float64)
    before, after = SPEC_TABLE[(k, d)]
    manual = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias, dilation=d)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch warns about the padded copy for even k, odd d
        torch_same = F.conv2d(x, conv.weight, conv.bias, dilation=d, padding='same')
    out = conv(x)
    assert out.shape == x.shape[:1] + (3,) + x.shape[2:]
    torch.testing.assert_close(out, manual, rtol=0, atol=1e-12)
    torch.testing.assert_close(out, torch_same, rtol=0, atol=1e-12)


@pytest.mark.parametrize('k,d', [(2, 1), (4, 1), (4, 3), (2, 3), (4, 2)])
def test_even_kernel_impulse_response_is_asymmetric(k, d):
    """Cross-correlation with 'before' padding: tap (0,0) moves an impulse by +before, tap (k-1,k-1) by -after.

    So with odd d the extra zero row/column sits at the bottom/right (TF 'same').
    """
    before, after = SPEC_TABLE[(k, d)]
    conv = SameConv2d(1, 1, k, d)
    x = torch.zeros(1, 1, 15, 15)
    x[..., 7, 7] = 1.0
    with torch.no_grad():
        for tap, shift in (((0, 0), before), ((k - 1, k - 1), -after)):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, tap[0], tap[1]] = 1.0
            y = conv(x)[0, 0]
            assert y.sum() == 1.0 and y[7 + shift, 7 + shift] == 1.0


def test_no_conv_uses_padding_same(net3):
    """padding='same' with even k and odd d makes torch warn and copy; the port pads explicitly there."""
    for m in net3.modules():
        if isinstance(m, SameConv2d):
            assert m.padding != 'same'
            assert m.explicit_pad == (same_padding(m.kernel_size[0], m.dilation[0])[0]
                                      != same_padding(m.kernel_size[0], m.dilation[0])[1])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        GIMSANet(num_feat=4)(torch.rand(1, 3, 6, 6))


def test_export_padding_same_numbers_same_state_dict():
    torch.manual_seed(1)
    a = GIMSANet(num_feat=8).eval()
    b = GIMSANet(num_feat=8, export_padding=True).eval()
    assert list(a.state_dict()) == list(b.state_dict())
    b.load_state_dict(a.state_dict())
    a, b = a.double(), b.double()  # float64: fp32 kernels for the two paddings differ by ~2e-6 on AVX2 CPUs
    x = torch.rand(1, 3, 11, 14, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=1e-10)


def test_receptive_field_is_85():
    """Input pixels that reach one output pixel (width does not matter), measured as in
    docs/gimsanet-spec.md#skips-and-receptive-field."""
    torch.manual_seed(0)
    net = GIMSANet(num_feat=2).double()
    x = torch.rand(1, 3, 91, 91, dtype=torch.float64, requires_grad=True)
    net(x)[0, :, 45, 45].sum().backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = touched.any(dim=1).nonzero().flatten()
    cols = touched.any(dim=0).nonzero().flatten()
    # 42 pixels either side: the +0.5 px shifts of the even kernels cancel over the 1,2,3,2,1 stack
    assert (rows.min().item(), rows.max().item()) == (3, 87)
    assert (cols.min().item(), cols.max().item()) == (3, 87)


# ----------------------------------------------------------------------------- structure
def test_head_puts_gradient_first_and_reuses_it():
    """h = cat[g, lrelu(h0(x))]: with h0 zeroed the head is [g, 0...]; checked through feat_conv1's input."""
    net = GIMSANet(num_feat=6).eval()
    seen = {}
    net.feat_conv1.register_forward_hook(lambda m, inp, out: seen.update(h=inp[0]))
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        net(x)
    torch.testing.assert_close(seen['h'][:, :1], gradient_map(x, 'official'))
    assert seen['h'].shape[1] == 7  # num_feat + 1


def test_grad_scale_scales_only_the_gradient_channel():
    """grad_scale multiplies the gradient map before it joins the head; 1 is the official map; the
    state_dict is the same (no parameter), so weights load across scales."""
    torch.manual_seed(0)
    net = GIMSANet(num_feat=6).eval()
    scaled = GIMSANet(num_feat=6, grad_scale=1 / 32).eval()
    scaled.load_state_dict(net.state_dict(), strict=True)
    seen = {}
    for name, model in (('one', net), ('scaled', scaled)):
        model.feat_conv1.register_forward_hook(lambda m, inp, out, name=name: seen.update({name: inp[0]}))
    x = torch.rand(1, 3, 9, 8)
    with torch.no_grad():
        net(x)
        scaled(x)
    torch.testing.assert_close(seen['scaled'][:, :1], gradient_map(x, 'official') / 32)
    torch.testing.assert_close(seen['scaled'][:, 1:], seen['one'][:, 1:])
    assert GIMSANet(num_feat=6, grad_scale=1.0).grad_scale == 1.0 == GIMSANet(num_feat=6).grad_scale
    for bad in (0, -1, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='grad_scale'):
            GIMSANet(num_feat=6, grad_scale=bad)


def test_msab_branch_is_gated_pixel_attention():
    torch.manual_seed(0)
    branch = MSABBranch(5, 3).eval()
    x = torch.rand(1, 5, 8, 8)
    with torch.no_grad():
        f = branch.feat(x)
        a = branch.attn_in(f)
        for conv, d in zip(branch.attn_dilated, (1, 2, 3, 2, 1)):
            assert conv.dilation == (d, d)
            a = F.leaky_relu(conv(a), 0.3)
        expected = torch.sigmoid(branch.attn_out(a)) * f
        torch.testing.assert_close(branch(x), expected)
    assert len(list(branch.modules())) == 1 + 1 + 1 + 1 + 5 + 1 + 1  # self, feat, attn_in, list, 5, out, act


def test_leaky_slope_default_and_override():
    assert GIMSANet(num_feat=4).act.negative_slope == 0.3
    net = GIMSANet(num_feat=4, negative_slope=0.01)
    assert net.act.negative_slope == 0.01 and net.msab[0].act.negative_slope == 0.01


# ----------------------------------------------------------------------------- switches (ablations)
def test_grad_modes_share_parameter_count_but_differ():
    torch.manual_seed(0)
    official = GIMSANet(num_feat=8).eval()
    x = torch.rand(1, 3, 10, 10)
    outputs = {}
    for mode in ('official', 'sobel_luma', 'sobel_color'):
        net = GIMSANet(num_feat=8, grad_mode=mode).eval()
        assert n_params(net) == n_params(official)
        net.load_state_dict(official.state_dict())  # same weights, different fixed map
        with torch.no_grad():
            outputs[mode] = net(x)
    assert not torch.allclose(outputs['official'], outputs['sobel_luma'])
    assert not torch.allclose(outputs['official'], outputs['sobel_color'])
    assert n_params(GIMSANet(grad_mode='sobel_color')) == 1_282_813


def test_grad_mode_none_drops_the_gradient_channel():
    net = GIMSANet(grad_mode='none')
    assert net.grad_map is None and net.head_width == 49
    # f1 loses one input channel, f7/t1 one output, f8 two inputs, t2 one in and one out, t3 one input
    w = 49
    delta = (conv_params(3, 50, w) - conv_params(3, w, w)) + (conv_params(3, w, 50) - conv_params(3, w, w)) \
        + (conv_params(3, 100, w) - conv_params(3, 98, w)) + (conv_params(3, w, 50) - conv_params(3, w, w)) \
        + (conv_params(3, 50, 50) - conv_params(3, w, w)) + (conv_params(3, 50, 3) - conv_params(3, w, 3))
    assert n_params(net) == 1_282_813 - delta == 1_279_687
    assert net(torch.rand(1, 3, 6, 7)).shape == (1, 3, 6, 7)
    assert n_params(GIMSANet(grad_mode='none', head_width=50)) > n_params(net)  # explicit width honoured


def test_attention_gate_off_outputs_ungated_f():
    net = GIMSANet(attention_gate=False)
    dropped = sum(7 * conv_params(k, 49, 49) for k in (2, 3, 4, 5))
    assert n_params(net) == 1_282_813 - dropped == 373_863
    branch = MSABBranch(4, 2, attention_gate=False)
    x = torch.rand(1, 4, 6, 6)
    torch.testing.assert_close(branch(x), branch.feat(x))
    assert not hasattr(branch, 'attn_in')


def test_msab_kernels_switch():
    net = GIMSANet(msab_kernels=(3,))
    assert len(net.msab) == 1 and net.msab[0].kernel_size == 3
    assert n_params(net) == 1_282_813 - (77_224 + 307_720 + 480_592)
    assert GIMSANet(num_feat=4, msab_kernels=(2, 4))(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5, 6)


# ----------------------------------------------------------------------------- serialisation / export
def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = GIMSANet(num_feat=8).eval()
    keys = list(a.state_dict())
    assert not any('grad_map' in k for k in keys)  # fixed kernels are non-persistent
    assert len(keys) == 2 * (1 + 8 + 4 * 8 + 3)
    buf = io.BytesIO()
    torch.save({'params': a.state_dict()}, buf)
    buf.seek(0)
    b = GIMSANet(num_feat=8).eval()
    b.load_state_dict(torch.load(buf, weights_only=True)['params'], strict=True)
    x = torch.rand(1, 3, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


@pytest.mark.export  # the export lane: python -m pytest -m export
def test_torch_export_and_torchscript():
    torch.manual_seed(0)
    net = GIMSANet(num_feat=8).eval()
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        ref = net(x)
        exported = torch.export.export(net, (x,))
        torch.testing.assert_close(exported.module()(x), ref)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # torch.jit.script is deprecated in recent torch
            scripted = torch.jit.script(net)
        torch.testing.assert_close(scripted(x), ref)
        torch.testing.assert_close(scripted(torch.rand(2, 3, 7, 6)).shape, torch.Size([2, 3, 7, 6]))


# ----------------------------------------------------------------------------- dtypes and devices
def test_bf16_weights_and_autocast():
    torch.manual_seed(0)
    net = GIMSANet(num_feat=8).eval()
    x = torch.rand(1, 3, 12, 11)
    with torch.no_grad():
        ref = net(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            auto = net(x)
        low = net.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16 and low.shape == x.shape
    scale = ref.abs().max()
    assert (auto.float() - ref).abs().max() < 0.05 * scale
    assert (low.float() - ref).abs().max() < 0.05 * scale


def test_input_gradients_are_finite_on_flat_images():
    """With a grad-requiring input the gradient branch adds eps, so flat regions do not give NaN."""
    net = GIMSANet(num_feat=4)
    x = torch.full((1, 3, 6, 6), 0.5, requires_grad=True)
    net(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_training_step_updates_parameters():
    torch.manual_seed(0)
    net = GIMSANet(num_feat=4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = F.l1_loss(net(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    opt.step()
    assert F.l1_loss(net(x), y) < loss


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    net = GIMSANet().eval()
    x = torch.rand(1, 3, 33, 29)
    with torch.no_grad():
        ref = net(x)
        out = net.cuda()(x.cuda()).cpu()
        with torch.autocast('cuda', dtype=torch.bfloat16):
            auto = net(x.cuda()).float().cpu()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert (auto - ref).abs().max() < 0.05 * ref.abs().max()
