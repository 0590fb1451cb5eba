"""GIMSANet: gradient-informed multi-scale attention denoiser, a faithful PyTorch port.

Ported from the official Keras code (debashis15/GIMSANet, colour AWGN model) following
``docs/gimsanet-spec.md``. With the default arguments the network is the official one layer for
layer, so Keras weights load through ``gimsanet_arch.archs.keras_convert`` and reproduce its output.

Structure (C = image channels, W = num_feat = 49, Hw = head_width = W + 1 = 50)::

    g  = GradientMap(x)                        fixed kernels, 1 channel, no trainable params
    h  = cat[g, lrelu(conv3(x))]               head, Hw channels, gradient is channel 0
    u  = lrelu(conv3d3(lrelu(conv3d2(h))))     dilations 2, 3
    u  = lrelu(conv3(u)); u = u + conv3(u)     local residual
    b  = lrelu(conv3(lrelu(conv3d2(lrelu(conv3d3(u)))))) -> Hw channels, + h
    F  = conv3(cat[b, h])                      fuse
    M  = sum_k MSABBranch_k(F), k in 2..5      pixel attention at 4 kernel sizes, summed
    y  = conv3(conv3(conv3(M) + h) + h) + x    linear tail, global residual

Faithfulness notes (docs/gimsanet-spec.md#layer-conventions): LeakyReLU slope 0.3 (Keras default),
glorot-uniform init with zero bias, and TF 'same' padding, which for even kernels pads one more
row/column at the bottom/right (torch's ``padding='same'`` does the same; ``SameConv2d`` spells it
out, see there).
"""
import math
from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY
from gimsanet_arch.archs.gradient_util import GRAD_MODES, GradientMap

# dilations of the five middle convs of the MSAB attention path
# (docs/gimsanet-spec.md#multi-scale-attention-block-msab)
MSAB_DILATIONS = (1, 2, 3, 2, 1)
# eps inside the gradient map's sqrt when the input requires grad (d sqrt / ds is infinite at 0)
GRAD_EPS = 1e-12


def same_padding(kernel_size, dilation=1):
    """TF/Keras 'same' zero padding ``(before, after)`` for stride 1; identical for H and W.

    total = d * (k - 1); before = floor(total / 2); after = the rest. E.g. k=4, d=1 -> (1, 2).
    """
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


def _layout_like(one_channel, ref):
    """The 1-channel gradient map laid out like the features it is concatenated with.

    A 1-channel tensor is contiguous and channels_last at once, and ``torch.cat`` then lays out
    the whole head contiguous: in a channels_last network every sum with the head and the fuse
    conv would convert layouts (about 4-6 % of the forward). Restriding the map costs a copy of
    one channel."""
    if ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous():
        return one_channel.clone(memory_format=torch.channels_last)
    return one_channel


class SameConv2d(nn.Conv2d):
    """Stride-1 conv with Keras 'same' zero padding, as ``weight`` + ``bias``.

    The padding table is in docs/gimsanet-spec.md#layer-conventions.

    Symmetric cases (odd k, or even k with even d) use the conv's own integer padding. Asymmetric ones
    (even k with odd d: one more row/column at the bottom/right) pad explicitly with ``F.pad`` and run an
    unpadded conv. That is exactly what ``padding='same'`` computes (torch makes the same padded copy
    internally and warns about it), and it exports to ONNX. ``explicit_pad=True`` uses ``F.pad`` for every
    conv. All variants give the same numbers and the same state_dict.
    """

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, explicit_pad=False):
        before, after = same_padding(kernel_size, dilation)
        self.explicit_pad = explicit_pad or before != after
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation,
                         padding=0 if self.explicit_pad else before, bias=True)
        self.pad_lrtb = [before, after, before, after]  # F.pad order: left, right, top, bottom

    def forward(self, x):
        if self.explicit_pad:
            x = F.pad(x, self.pad_lrtb)
        return self._conv_forward(x, self.weight, self.bias)


class MSABBranch(nn.Module):
    """One kernel size of the multi-scale attention block (pixel attention, full resolution).

    ``f = conv(F)``; ``a = conv(f)``; five convs with dilations 1,2,3,2,1, each + LeakyReLU; one more conv;
    ``out = sigmoid(a) * f``. All convs are ``k x k``, ``num_feat -> num_feat``, 8 per branch.
    The f -> a -> first dilated conv chain is linear (no activation); that redundancy is faithful.

    ``attention_gate=False`` (ablation): the branch is just ``out = f = conv(F)``. The attention path
    (7 convs) is then not built at all, rather than built and left unused, so the parameter count drops
    by ``7 * (k^2 W^2 + W)`` per branch and DDP sees no unused parameters.
    """

    attention_gate: Final[bool]  # a TorchScript constant, so the unused path is not compiled

    def __init__(self, num_feat, kernel_size, negative_slope=0.3, attention_gate=True, explicit_pad=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.attention_gate = attention_gate

        def conv(d=1):
            return SameConv2d(num_feat, num_feat, kernel_size, d, explicit_pad)

        self.feat = conv()
        if attention_gate:
            self.attn_in = conv()
            self.attn_dilated = nn.ModuleList([conv(d) for d in MSAB_DILATIONS])
            self.attn_out = conv()
        self.act = nn.LeakyReLU(negative_slope, inplace=True)  # on fresh conv outputs only (see GIMSANet)

    def forward(self, x):
        f = self.feat(x)
        if not self.attention_gate:
            return f
        a = self.attn_in(f)
        for conv in self.attn_dilated:
            a = self.act(conv(a))
        return torch.sigmoid(self.attn_out(a)) * f


@ARCH_REGISTRY.register()
class GIMSANet(nn.Module):
    """GIMSANet (INDICON 2024). Defaults reproduce the official colour network exactly.

    Args:
        in_channels: image channels C (3 colour, 1 gray). Any input size (odd too) and batch.
        out_channels: output channels; ``None`` = ``in_channels``. Must equal ``in_channels`` (the net
            ends with a global residual ``+ input``).
        num_feat: trunk width W (49 officially): h0, f1..f6, f8, every MSAB conv.
        head_width: width of the head ``h = cat[g, h0]`` and of everything added to it (f7, t1, t2).
            ``None`` derives it: ``num_feat + 1`` with a gradient branch (50 officially), ``num_feat``
            without. If given, h0 outputs ``head_width - 1`` (or ``head_width`` with ``grad_mode='none'``).
        negative_slope: LeakyReLU slope; 0.3 is the Keras default the official code relies on.
        grad_mode: ``'official'`` (the released colour layout: colour difference + Prewitt-y; true Sobel
            for C=1), ``'sobel_luma'``, ``'sobel_color'`` (see ``gradient_util``), or ``'none'``.
            The three maps all give one channel, so they share the parameter count.
            ``'none'`` is the honest ablation: no gradient branch at all, the head is h0 alone
            (``num_feat`` channels), so f1, f7, f8 (input ``2*head_width``), t1, t2, t3 shrink by one
            channel and the parameter count drops (3ch: 1,282,813 -> 1,279,687); no zero channel is kept.
        grad_scale: factor on the gradient map before it joins the head (default 1: the official,
            unnormalised map). The official map of a colour image is mostly a smoothed B-R colour
            difference with an RMS of about 3.8, some 30x the learned head channels at init; through
            the identity skips it puts a large colour offset on the output that training must first
            cancel. About 1/32 brings it to the head's scale. Not stored in the weights (no parameter):
            give the same value when loading them.
        msab_kernels: kernel sizes of the MSAB branches (2, 3, 4, 5 officially); outputs are summed.
        attention_gate: ``False`` makes each MSAB branch output ``f = conv_k(F)`` ungated and drops the
            attention path (see ``MSABBranch``).
        export_padding: explicit ``F.pad`` before every conv instead of the conv's own padding, for
            exporters (docs/gimsanet-spec.md#layer-conventions); same numbers, same state_dict. Even
            without it no conv uses ``padding='same'``.
    """

    # every conv runs at full resolution with 'same' padding: any height and width work as they are
    pad_multiple = 1
    # the constructor argument that sets the image channels (the output has as many)
    in_channels_arg = 'in_channels'
    # a narrow trunk (8 instead of 49 features) that runs in milliseconds, for plumbing tests
    tiny_config = {'num_feat': 8}

    def __init__(self, in_channels=3, out_channels=None, num_feat=49, head_width=None, negative_slope=0.3,
                 grad_mode='official', msab_kernels=(2, 3, 4, 5), attention_gate=True, export_padding=False,
                 grad_scale=1.0):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if out_channels != in_channels:
            raise ValueError(f'GIMSANet adds its input to the output, so out_channels ({out_channels}) '
                             f'must equal in_channels ({in_channels})')
        if grad_mode not in GRAD_MODES + ('none',):
            raise ValueError(f'grad_mode must be one of {GRAD_MODES + ("none",)}, got {grad_mode!r}')
        msab_kernels = tuple(int(k) for k in msab_kernels)
        if not msab_kernels:
            raise ValueError('msab_kernels must name at least one kernel size')

        grad_scale = float(grad_scale)
        if not (grad_scale > 0 and math.isfinite(grad_scale)):
            raise ValueError(f'grad_scale must be a positive number, got {grad_scale!r}')
        self.in_channels = in_channels
        self.grad_mode = grad_mode
        self.grad_scale = grad_scale
        self.use_grad = grad_mode != 'none'
        n_grad = 1 if self.use_grad else 0
        if head_width is None:
            head_width = num_feat + n_grad
        if head_width - n_grad < 1:
            raise ValueError(f'head_width={head_width} leaves no channel for the head conv')
        self.head_width = head_width

        def conv(cin, cout, k=3, d=1):
            return SameConv2d(cin, cout, k, d, export_padding)

        # head: fixed gradient map (if any) + learned conv; concat puts the gradient first (Keras order)
        self.grad_map = GradientMap(in_channels, grad_mode) if self.use_grad else None
        self.head_conv = conv(in_channels, head_width - n_grad)
        # feature block (AGSDNet lineage): dilations 2, 3, 1, [1 residual], 3, 2, 1
        self.feat_conv1 = conv(head_width, num_feat, d=2)
        self.feat_conv2 = conv(num_feat, num_feat, d=3)
        self.feat_conv3 = conv(num_feat, num_feat)
        self.feat_conv4 = conv(num_feat, num_feat)  # u + conv(u), no activation
        self.feat_conv5 = conv(num_feat, num_feat, d=3)
        self.feat_conv6 = conv(num_feat, num_feat, d=2)
        self.feat_conv7 = conv(num_feat, head_width)  # LeakyReLU, then + h
        self.fuse_conv = conv(2 * head_width, num_feat)  # on cat[f7 out, h], no activation
        self.msab = nn.ModuleList([
            MSABBranch(num_feat, k, negative_slope, attention_gate, export_padding) for k in msab_kernels])
        # tail: all linear, h re-added twice, then the global residual
        self.tail_conv1 = conv(num_feat, head_width)
        self.tail_conv2 = conv(head_width, head_width)
        self.tail_conv3 = conv(head_width, out_channels)
        # in place: it only ever takes a fresh conv output, which no backward needs (one full-size
        # buffer less per activation: about 5 % of the float32 channels_last forward)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.grad_eps = GRAD_EPS
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Keras default init: glorot (xavier) uniform weights, zero biases (not torch's kaiming)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        feat = self.act(self.head_conv(x))
        if self.grad_map is not None:
            # Keras' sqrt has no eps; it is exact and gradient-free in training (the input needs no grad).
            # Only when the input needs grad (TTA / adversarial / input-side losses) add a tiny eps so that
            # flat regions do not produce NaN gradients.
            eps = self.grad_eps if x.requires_grad else 0.0
            grad = self.grad_map(x, eps)
            if self.grad_scale != 1.0:
                grad = grad * self.grad_scale
            h = torch.cat([_layout_like(grad, feat), feat], dim=1)
        else:
            h = feat

        u = self.act(self.feat_conv1(h))
        u = self.act(self.feat_conv2(u))
        u = self.act(self.feat_conv3(u))
        u = u + self.feat_conv4(u)
        u = self.act(self.feat_conv5(u))
        u = self.act(self.feat_conv6(u))
        u = self.act(self.feat_conv7(u)) + h
        fused = self.fuse_conv(torch.cat([u, h], dim=1))

        m = self.msab[0](fused)  # the branches are summed (Keras Add), not concatenated
        for i, branch in enumerate(self.msab):
            if i > 0:
                m = m + branch(fused)

        y = self.tail_conv1(m) + h
        y = self.tail_conv2(y) + h
        return self.tail_conv3(y) + x
