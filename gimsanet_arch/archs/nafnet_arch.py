"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), written from the
paper for this package, and ``NAFNetLocal``, its TLC test-time variant.

Parameter names, shapes and constructor arguments follow the authors' release
(github.com/megvii-research/NAFNet), so their checkpoints (``params`` key) load with
``strict=True`` and give the same outputs; modules are also created in the same order, so a
seeded construction gives the same initial weights.

NAFNet is a U-Net of "nonlinear activation free" blocks. A block is

    y   = x + beta  * conv3(SCA(SG(dwconv3x3(conv1(LN(x))))))
    out = y + gamma * conv5(SG(conv4(LN(y))))

with SG the SimpleGate (split channels in halves, multiply them), SCA the simplified channel
attention (``x * conv1x1(global_avg_pool(x))``), LN a per-pixel layer norm over channels (eps
1e-6) and ``beta``/``gamma`` learnable per-channel scales initialised to zero. Downsampling is a
2x2 stride-2 conv doubling the channels, upsampling a bias-free 1x1 conv + pixel-shuffle halving
them; skips are added. The input is zero-padded (right/bottom) to a multiple of
``2 ** len(enc_blk_nums)`` and the output cropped back; global residual.

The release's layer norm is a custom ``torch.autograd.Function``, which blocks ONNX export and
``torch.export``; here it is the same arithmetic in plain torch ops, whose autograd gives the same
gradients (checked against the release's hand-written backward in the tests).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from gimsanet_arch.archs.tlc_util import replace_global_pools


class LayerNorm2d(nn.Module):
    """Layer norm over the channel dim of (N, C, H, W) at each pixel (biased variance)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        centred = x - mean
        var = centred.pow(2).mean(1, keepdim=True)
        y = centred / (var + self.eps).sqrt()
        c = x.shape[1]
        return self.weight.view(1, c, 1, 1) * y + self.bias.view(1, c, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels into two halves and multiply them."""

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block (see the module docstring)."""

    def __init__(self, c, DW_Expand=2, FFN_Expand=2, drop_out_rate=0.):
        super().__init__()
        dw_channel = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.conv2 = nn.Conv2d(
            dw_channel, dw_channel, kernel_size=3, padding=1, stride=1, groups=dw_channel, bias=True)
        self.conv3 = nn.Conv2d(dw_channel // 2, c, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        # simplified channel attention: global average pool + 1x1 conv
        self.sca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dw_channel // 2, dw_channel // 2, kernel_size=1, padding=0, stride=1, groups=1, bias=True),
        )
        self.sg = SimpleGate()

        ffn_channel = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1, padding=0, stride=1, groups=1, bias=True)
        self.conv5 = nn.Conv2d(ffn_channel // 2, c, kernel_size=1, padding=0, stride=1, groups=1, bias=True)

        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)

        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0. else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0. else nn.Identity()

        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)), requires_grad=True)
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)), requires_grad=True)

    def forward(self, inp):
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = x * self.sca(x)
        x = self.dropout1(self.conv3(x))
        y = inp + x * self.beta

        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        x = self.dropout2(x)
        return y + x * self.gamma


@ARCH_REGISTRY.register()
class NAFNet(nn.Module):
    """NAFNet.

    Args:
        img_channel (int): input and output channels (3 colour, 1 gray).
        width (int): channels at full resolution (doubled at each level).
        middle_blk_num (int): blocks at the lowest resolution.
        enc_blk_nums (list[int]): blocks per encoder level (one 2x downsampling each).
        dec_blk_nums (list[int]): blocks per decoder level (same length as ``enc_blk_nums``).

    The release's defaults (width 16, one middle block, no levels) are kept; the published
    SIDD/GoPro models use width 32 or 64, ``enc_blk_nums=[2, 2, 4, 8]``, ``middle_blk_num=12``,
    ``dec_blk_nums=[2, 2, 2, 2]``.
    """

    # forward() pads to 2**len(enc_blk_nums) itself and crops back, so callers need not pad
    pad_multiple = 1
    # the official constructor's name for the image channels (input and output)
    in_channels_arg = 'img_channel'
    # four levels of one block at width 8, for plumbing tests
    tiny_config = {'width': 8, 'enc_blk_nums': [1, 1, 1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1, 1]}

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[]):  # noqa: B006
        super().__init__()
        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1, stride=1, groups=1, bias=True)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1, stride=1, groups=1, bias=True)

        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()

        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2

        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])

        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))

        self.padder_size = 2**len(self.encoders)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = self.check_image_size(inp)

        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)

        x = self.middle_blks(x)

        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)

        x = self.ending(x) + inp
        return x[:, :, :h, :w]

    def check_image_size(self, x):
        """Zero-pad right/bottom to a multiple of ``padder_size``."""
        h, w = x.shape[-2:]
        pad_h = (self.padder_size - h % self.padder_size) % self.padder_size
        pad_w = (self.padder_size - w % self.padder_size) % self.padder_size
        return F.pad(x, (0, pad_w, 0, pad_h))


@ARCH_REGISTRY.register()
class NAFNetLocal(NAFNet):
    """NAFNet with TLC (test-time local converter): every SCA global average pool becomes a local
    average pool whose window is 1.5x what the layer saw on ``train_size`` inputs. Same parameters
    as :class:`NAFNet` (its checkpoints load unchanged); identical to it on inputs up to 1.5x the
    training size. Like the release, the network is left in eval mode after construction.

    Args:
        *args, **kwargs: :class:`NAFNet` arguments.
        train_size (tuple): (N, C, H, W) of the training crops (only H, W matter).
        fast_imp (bool): the release's faster, non-equivalent pooling approximation.

    ``pad_multiple`` and ``in_channels_arg`` are NAFNet's (inherited).
    """

    # NAFNet's tiny net trained on 16 px crops: a 19x23 input (padded to 32 inside) is larger than
    # the 24 px TLC windows, so the local pools really slide
    tiny_config = {**NAFNet.tiny_config, 'train_size': [1, 3, 16, 16]}

    def __init__(self, *args, train_size=(1, 3, 256, 256), fast_imp=False, **kwargs):
        super().__init__(*args, **kwargs)
        train_size = tuple(train_size)
        _, _, train_h, train_w = train_size
        base_size = (int(train_h * 1.5), int(train_w * 1.5))
        self.train_size = train_size
        self.base_size = base_size
        self.fast_imp = fast_imp

        self.eval()
        replace_global_pools(self, base_size=base_size, train_size=train_size, fast_imp=fast_imp)
        # Fix each window from the feature size its block has for a train_size input (the release
        # runs one forward of torch.rand(train_size) for this; the sizes follow from the padding
        # and the levels, so no forward is needed, and gray nets need no 3-channel train_size).
        # The draw keeps the global RNG stream as after the release's constructor.
        torch.rand(train_size)
        pad_h = train_h + (self.padder_size - train_h % self.padder_size) % self.padder_size
        pad_w = train_w + (self.padder_size - train_w % self.padder_size) % self.padder_size
        levels = [(self.encoders[i], i) for i in range(min(len(self.encoders), len(self.downs)))]
        levels.append((self.middle_blks, len(self.encoders)))
        n_used = min(len(self.decoders), len(self.ups), len(self.encoders))
        levels += [(self.decoders[j], len(self.encoders) - 1 - j) for j in range(n_used)]
        for blocks, level in levels:
            for block in blocks:
                block.sca[0].set_kernel_from(pad_h >> level, pad_w >> level)
