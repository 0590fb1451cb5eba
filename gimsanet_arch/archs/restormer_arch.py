"""Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image
Restoration", CVPR 2022), written from the paper for this package.

Parameter names, shapes and constructor arguments follow the authors' release
(github.com/swz30/Restormer), so their checkpoints (``params`` key) load with ``strict=True`` and
give the same outputs. Plain torch ops only (no einops), so the network traces and exports.

Layout: a 3x3 patch embedding, a 4-level U-shaped encoder/decoder of transformer blocks
(channels ``dim, 2dim, 4dim, 8dim``), pixel-unshuffle down- and pixel-shuffle up-sampling,
refinement blocks at full resolution (``2dim`` channels) and a 3x3 output conv with a global
residual. Each transformer block is ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``:

* MDTA (multi-Dconv head transposed attention): 1x1 then depth-wise 3x3 conv produce q, k, v;
  attention is over channels (a ``c/heads x c/heads`` map per head) with L2-normalised q and k
  and a learnable per-head ``temperature``.
* GDFN (gated-Dconv feed-forward): 1x1 conv to ``2 * int(dim * ffn_expansion_factor)``
  channels, depth-wise 3x3, ``gelu(x1) * x2``, 1x1 back to ``dim``.
* Layer norm is over channels at each pixel, eps 1e-5, biased variance; ``BiasFree`` does not
  subtract the mean and has no bias.

Spatial size must be divisible by 8 (three 2x downsamplings); the test pipeline pads.
"""
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

_LN_EPS = 1e-5


def _channels_last(x):
    """(b, c, h, w) -> (b, h*w, c) view, the layout the channel layer norm reduces over."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _channels_first(x, h, w):
    b, _, c = x.shape
    return x.reshape(b, h, w, c).permute(0, 3, 1, 2)


def _channel_shape(normalized_shape):
    """``normalized_shape`` as a one-entry ``torch.Size`` (both layer norms work over channels only)."""
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape, )
    normalized_shape = torch.Size(normalized_shape)
    if len(normalized_shape) != 1:
        raise ValueError(f'normalized_shape must have one entry, got {tuple(normalized_shape)}')
    return normalized_shape


class BiasFree_LayerNorm(nn.Module):
    """Scale-only layer norm over the last dim: ``x / sqrt(var(x) + eps) * weight`` (mean kept)."""

    def __init__(self, normalized_shape):
        super().__init__()
        self.normalized_shape = normalized_shape = _channel_shape(normalized_shape)
        self.weight = nn.Parameter(torch.ones(normalized_shape))

    def forward(self, x):
        var = x.var(-1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + _LN_EPS) * self.weight


class WithBias_LayerNorm(nn.Module):
    """Standard layer norm over the last dim with weight and bias (eps 1e-5, biased variance)."""

    def __init__(self, normalized_shape):
        super().__init__()
        self.normalized_shape = normalized_shape = _channel_shape(normalized_shape)
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + _LN_EPS) * self.weight + self.bias


class LayerNorm(nn.Module):
    """Channel layer norm of a (b, c, h, w) map; ``LayerNorm_type`` is 'BiasFree' or anything
    else for the with-bias variant (as in the release)."""

    def __init__(self, dim, LayerNorm_type):
        super().__init__()
        if LayerNorm_type == 'BiasFree':
            self.body = BiasFree_LayerNorm(dim)
        else:
            self.body = WithBias_LayerNorm(dim)

    def forward(self, x):
        h, w = x.shape[-2:]
        return _channels_first(self.body(_channels_last(x)), h, w)


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network (GDFN)."""

    def __init__(self, dim, ffn_expansion_factor, bias):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden * 2, hidden * 2, kernel_size=3, stride=1, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class Attention(nn.Module):
    """Multi-Dconv head transposed self-attention (MDTA): attention across channels."""

    def __init__(self, dim, num_heads, bias):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, stride=1, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        heads = self.num_heads
        # (b, heads * ch, h, w) -> (b, heads, ch, h*w)
        q = q.reshape(b, heads, c // heads, h * w)
        k = k.reshape(b, heads, c // heads, h * w)
        v = v.reshape(b, heads, c // heads, h * w)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        attn = attn.softmax(dim=-1)
        out = (attn @ v).reshape(b, c, h, w)
        return self.project_out(out)


class TransformerBlock(nn.Module):

    def __init__(self, dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv embedding (overlapping patches)."""

    def __init__(self, in_c=3, embed_dim=48, bias=False):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x):
        return self.proj(x)


class Resample(nn.Module):
    """Change the resolution by pixel-(un)shuffling a 3x3 conv's output: ``up`` doubles the
    resolution and halves the channels (conv to 2n channels + shuffle); otherwise it halves the
    resolution and doubles the channels (conv to n/2 channels + unshuffle). The official code has
    the two as ``Upsample`` / ``Downsample``; the weights (``body.0.weight``) are the same."""

    def __init__(self, n_feat, up):
        super().__init__()
        out_feat, shuffle = (n_feat * 2, nn.PixelShuffle(2)) if up else (n_feat // 2, nn.PixelUnshuffle(2))
        self.body = nn.Sequential(nn.Conv2d(n_feat, out_feat, kernel_size=3, stride=1, padding=1, bias=False), shuffle)

    def forward(self, x):
        return self.body(x)


def _blocks(n, dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type):
    return nn.Sequential(*[
        TransformerBlock(
            dim=dim,
            num_heads=num_heads,
            ffn_expansion_factor=ffn_expansion_factor,
            bias=bias,
            LayerNorm_type=LayerNorm_type) for _ in range(n)
    ])


@ARCH_REGISTRY.register()
class Restormer(nn.Module):
    """Restormer.

    Args:
        inp_channels (int): input channels (3 colour, 1 gray, 6 for dual-pixel input).
        out_channels (int): output channels.
        dim (int): channels at full resolution (level ``i`` has ``dim * 2**i``).
        num_blocks (list[int]): transformer blocks per level (levels 1-3 used by encoder and
            decoder, level 4 is the latent).
        num_refinement_blocks (int): blocks after the decoder at full resolution.
        heads (list[int]): attention heads per level.
        ffn_expansion_factor (float): GDFN hidden width factor.
        bias (bool): bias in the transformer convs and the output conv.
        LayerNorm_type (str): 'WithBias' (default, as released) or 'BiasFree' (used by the
            published denoising configs).
        dual_pixel_task (bool): dual-pixel defocus deblurring: no global residual, a 1x1 skip from
            the embedding instead (set ``inp_channels=6``).
    """

    # three stride-2 levels (PixelUnshuffle(2) each): height and width must divide by 2**3
    pad_multiple = 8
    # the official constructor's name for the input channels (``out_channels`` is separate)
    in_channels_arg = 'inp_channels'
    # one block per level and 8 channels at full resolution, for plumbing tests
    tiny_config = {'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1}

    def __init__(self,
                 inp_channels=3,
                 out_channels=3,
                 dim=48,
                 num_blocks=[4, 6, 6, 8],  # noqa: B006  (official signature)
                 num_refinement_blocks=4,
                 heads=[1, 2, 4, 8],  # noqa: B006
                 ffn_expansion_factor=2.66,
                 bias=False,
                 LayerNorm_type='WithBias',
                 dual_pixel_task=False):
        super().__init__()
        opts = dict(ffn_expansion_factor=ffn_expansion_factor, bias=bias, LayerNorm_type=LayerNorm_type)
        d1, d2, d3, d4 = dim, int(dim * 2**1), int(dim * 2**2), int(dim * 2**3)

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)

        self.encoder_level1 = _blocks(num_blocks[0], d1, heads[0], **opts)
        self.down1_2 = Resample(d1, up=False)
        self.encoder_level2 = _blocks(num_blocks[1], d2, heads[1], **opts)
        self.down2_3 = Resample(d2, up=False)
        self.encoder_level3 = _blocks(num_blocks[2], d3, heads[2], **opts)
        self.down3_4 = Resample(d3, up=False)
        self.latent = _blocks(num_blocks[3], d4, heads[3], **opts)

        self.up4_3 = Resample(d4, up=True)
        self.reduce_chan_level3 = nn.Conv2d(d4, d3, kernel_size=1, bias=bias)
        self.decoder_level3 = _blocks(num_blocks[2], d3, heads[2], **opts)
        self.up3_2 = Resample(d3, up=True)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, kernel_size=1, bias=bias)
        self.decoder_level2 = _blocks(num_blocks[1], d2, heads[1], **opts)
        self.up2_1 = Resample(d2, up=True)  # level 1 keeps the concatenated 2*dim channels (no 1x1 reduce)
        self.decoder_level1 = _blocks(num_blocks[0], d2, heads[0], **opts)

        self.refinement = _blocks(num_refinement_blocks, d2, heads[0], **opts)

        self.dual_pixel_task = dual_pixel_task
        if self.dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, d2, kernel_size=1, bias=bias)

        self.output = nn.Conv2d(d2, out_channels, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, inp_img):
        emb = self.patch_embed(inp_img)
        enc1 = self.encoder_level1(emb)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        x = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1))
        x = self.decoder_level3(x)
        x = self.reduce_chan_level2(torch.cat([self.up3_2(x), enc2], 1))
        x = self.decoder_level2(x)
        x = self.decoder_level1(torch.cat([self.up2_1(x), enc1], 1))
        x = self.refinement(x)

        if self.dual_pixel_task:
            return self.output(x + self.skip_conv(emb))
        return self.output(x) + inp_img
