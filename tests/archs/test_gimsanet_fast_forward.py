"""GIMSANet's cheaper forward (activations in place on the fresh conv outputs, the gradient map laid
out like the features) against the plain forward it replaces, written out here from the same
modules with out-of-place ops: same outputs, same gradients, and in a channels_last network the
head stays channels_last (no layout conversion in any later sum or concatenation)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.archs.gradient_util import gradient_map


def plain_branch(branch, x, slope):
    f = branch.feat(x)
    if not branch.attention_gate:
        return f
    a = branch.attn_in(f)
    for conv in branch.attn_dilated:
        a = F.leaky_relu(conv(a), slope)
    return torch.sigmoid(branch.attn_out(a)) * f


def plain_forward(net, x):
    """The network's maths with no in-place op and no layout handling (docs/gimsanet-spec.md#architecture)."""
    slope = net.act.negative_slope
    feat = F.leaky_relu(net.head_conv(x), slope)
    if net.grad_map is not None:
        eps = net.grad_eps if x.requires_grad else 0.0
        h = torch.cat([gradient_map(x, net.grad_mode, eps), feat], dim=1)
    else:
        h = feat
    u = F.leaky_relu(net.feat_conv1(h), slope)
    u = F.leaky_relu(net.feat_conv2(u), slope)
    u = F.leaky_relu(net.feat_conv3(u), slope)
    u = u + net.feat_conv4(u)
    u = F.leaky_relu(net.feat_conv5(u), slope)
    u = F.leaky_relu(net.feat_conv6(u), slope)
    u = F.leaky_relu(net.feat_conv7(u), slope) + h
    fused = net.fuse_conv(torch.cat([u, h], dim=1))
    m = sum(plain_branch(branch, fused, slope) for branch in net.msab)
    y = net.tail_conv1(m) + h
    y = net.tail_conv2(y) + h
    return net.tail_conv3(y) + x


CONFIGS = [dict(), dict(in_channels=1), dict(grad_mode='none'), dict(grad_mode='sobel_color'),
           dict(attention_gate=False, msab_kernels=[2, 3]), dict(negative_slope=0.1)]


def _net(cfg, seed=0):
    torch.manual_seed(seed)
    net = GIMSANet(**{'num_feat': 6, **cfg})
    for m in net.modules():  # non-zero biases: every conv matters
        if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    return net


@pytest.mark.parametrize('cfg', CONFIGS, ids=[str(c) for c in CONFIGS])
def test_forward_equals_the_plain_forward(cfg):
    net = _net(cfg).eval()
    x = torch.rand(2, net.in_channels, 19, 22)
    with torch.no_grad():
        ref = plain_forward(net, x)
        assert torch.equal(net(x), ref)  # the same ops in the same order: bit-equal
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert torch.equal(net(x), plain_forward(net, x))
        net.to(memory_format=torch.channels_last)
        out = net(x.contiguous(memory_format=torch.channels_last))
    assert (out - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize('cfg', CONFIGS[:3] + CONFIGS[4:5], ids=[str(c) for c in CONFIGS[:3] + CONFIGS[4:5]])
def test_gradients_equal_the_plain_forward(cfg):
    """The in-place activations never overwrite what backward needs: the same loss gives the same
    gradients, for the weights and for an input that requires grad (the gradient map's eps path)."""
    net = _net(cfg).double()
    twin = copy.deepcopy(net)
    x = torch.rand(2, net.in_channels, 13, 11, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    target = torch.rand_like(x)
    F.l1_loss(net(x1), target).backward()
    F.l1_loss(plain_forward(twin, x2), target).backward()
    for (name, a), b in zip(net.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12, msg=name)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('in_channels', [1, 3])
def test_channels_last_network_keeps_the_head_channels_last(in_channels):
    """The 1-channel gradient map is laid out like the features, so ``cat[g, feat]`` (the head, added
    to three later sums and concatenated into the fuse conv) is channels_last, not contiguous."""
    net = _net(dict(in_channels=in_channels)).eval().to(memory_format=torch.channels_last)
    seen = {}
    net.feat_conv1.register_forward_hook(lambda m, inp, out: seen.update(head=inp[0]))
    net.fuse_conv.register_forward_hook(lambda m, inp, out: seen.update(fuse_in=inp[0]))
    x = torch.rand(1, in_channels, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        net(x)
    for name in ('head', 'fuse_in'):
        t = seen[name]
        assert t.stride(1) == 1 and t.is_contiguous(memory_format=torch.channels_last), name
    # a contiguous network keeps contiguous activations
    with torch.no_grad():
        net.to(memory_format=torch.contiguous_format)(x.contiguous())
    assert seen['head'].is_contiguous() and seen['fuse_in'].is_contiguous()
