"""Test-time Local Converter (TLC; Chu et al., "Improving Image Restoration by Revisiting Global
Information Aggregation", ECCV 2022, arXiv:2112.04491), written for this package.

A network trained on crops computes its global statistics (here: global average pooling) over a
crop; at test time on a full image the same layer would average over a much larger area. TLC
swaps each ``nn.AdaptiveAvgPool2d(1)`` for a *local* average pool whose window is the size the
layer saw during training times ``base_size / train_size`` (1.5 for NAFNet), so train and test
statistics agree. Numbers follow the authors' release (``basicsr/models/archs/local_arch.py`` of
megvii-research/NAFNet): the window of each layer is fixed from the feature size that layer has
for an input of ``train_size``, the window sum is an integral image (cumulative sums), and the
valid-window map is replicate-padded back to the input size.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# subsampling factors tried by the (inexact, faster) ``fast_imp`` variant, largest first
_FAST_RATES = (5, 4, 3, 2, 1)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class LocalAvgPool2d(nn.Module):
    """Local average pooling that replaces a global one at test time.

    Each output pixel is the mean over a ``kernel_size`` window (stride 1) of the input; where the
    window does not fit (borders), the nearest valid value is repeated (``auto_pad``). If the window
    covers the whole input, it is global average pooling (a 1x1 output).

    Args:
        kernel_size (tuple[int, int] | None): window; ``None`` to derive it from ``base_size``
            and ``train_size`` and the first feature size seen (see :meth:`set_kernel_from`).
        base_size (int | tuple[int, int] | None): image size whose whole-image statistics the
            window should reproduce (e.g. 1.5x the training crop).
        auto_pad (bool): replicate-pad the valid part back to the input size.
        fast_imp (bool): the release's faster, non-equivalent approximation (subsampled integral
            image, nearest upsampling).
        train_size (tuple): (N, C, H, W) shape of the training input.
    """

    def __init__(self, kernel_size=None, base_size=None, auto_pad=True, fast_imp=False, train_size=None):
        super().__init__()
        self.kernel_size = None if kernel_size is None else list(_pair(kernel_size))
        self.base_size = base_size
        self.auto_pad = auto_pad
        self.fast_imp = fast_imp
        self.train_size = train_size
        self.max_r1 = _FAST_RATES[0]
        self.max_r2 = _FAST_RATES[0]

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, base_size={self.base_size}, stride=1, fast_imp={self.fast_imp}'

    def set_kernel_from(self, feat_h, feat_w):
        """Fix the window from the feature size (``feat_h``, ``feat_w``) this layer has when the
        network input has ``train_size``: window = feature size * base size // train size."""
        base_h, base_w = _pair(self.base_size)
        train_h, train_w = self.train_size[-2], self.train_size[-1]
        self.base_size = (base_h, base_w)
        self.kernel_size = [feat_h * base_h // train_h, feat_w * base_w // train_w]
        self.max_r1 = max(1, _FAST_RATES[0] * feat_h // train_h)
        self.max_r2 = max(1, _FAST_RATES[0] * feat_w // train_w)

    def forward(self, x):
        if self.kernel_size is None and self.base_size:
            self.set_kernel_from(x.shape[2], x.shape[3])
        h, w = x.shape[-2:]
        k_h, k_w = self.kernel_size
        if k_h >= h and k_w >= w:
            return F.adaptive_avg_pool2d(x, 1)
        out = self._fast_mean(x) if self.fast_imp else self._window_mean(x)
        if self.auto_pad:
            out_h, out_w = out.shape[-2:]
            top, left = (h - out_h) // 2, (w - out_w) // 2
            out = F.pad(out, (left, w - out_w - left, top, h - out_h - top), mode='replicate')
        return out

    def _window_mean(self, x):
        """Exact mean over every fully-inside window, from an integral image with a zero row and
        column in front: sum(window) = S[i+k, j+k] - S[i, j+k] - S[i+k, j] + S[i, j]."""
        h, w = x.shape[-2:]
        k_h, k_w = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        integral = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        total = (integral[:, :, k_h:, k_w:] + integral[:, :, :-k_h, :-k_w] - integral[:, :, :-k_h, k_w:] -
                 integral[:, :, k_h:, :-k_w])
        return total / (k_h * k_w)

    def _fast_mean(self, x):
        """The release's approximation: integral image of a strided subsample (largest rate in
        5..1 dividing the size, capped by the training-size rate), no leading zero row/column,
        then nearest upsampling by the rate."""
        h, w = x.shape[-2:]
        r1 = min(self.max_r1, next(r for r in _FAST_RATES if h % r == 0))
        r2 = min(self.max_r2, next(r for r in _FAST_RATES if w % r == 0))
        integral = x[:, :, ::r1, ::r2].cumsum(dim=-1).cumsum(dim=-2)
        sh, sw = integral.shape[-2:]
        k1, k2 = min(sh - 1, self.kernel_size[0] // r1), min(sw - 1, self.kernel_size[1] // r2)
        total = (integral[:, :, :-k1, :-k2] - integral[:, :, :-k1, k2:] - integral[:, :, k1:, :-k2] +
                 integral[:, :, k1:, k2:])
        return F.interpolate(total / (k1 * k2), scale_factor=(r1, r2))


def replace_global_pools(module, base_size, train_size, fast_imp=False):
    """Replace, in place and recursively, every ``nn.AdaptiveAvgPool2d(1)`` of ``module`` by a
    :class:`LocalAvgPool2d` (window not yet fixed). Returns the list of new pools in module order."""
    pools = []
    for name, child in module.named_children():
        if len(list(child.children())) > 0:
            pools += replace_global_pools(child, base_size, train_size, fast_imp)
        if isinstance(child, nn.AdaptiveAvgPool2d):
            if _pair(child.output_size) != (1, 1):
                raise ValueError(f'TLC replaces global pooling only, got output_size={child.output_size}')
            pool = LocalAvgPool2d(base_size=base_size, fast_imp=fast_imp, train_size=train_size)
            setattr(module, name, pool)
            pools.append(pool)
    return pools


def convert_to_local(model, base_size, train_size, fast_imp=False, example_input=None):
    """Generic TLC conversion (as the release's ``Local_Base.convert``): replace global pools,
    then fix each window with one no-grad forward of ``example_input`` (default: uniform noise of
    shape ``train_size``). Networks that know their feature sizes can call
    :meth:`LocalAvgPool2d.set_kernel_from` instead (see ``NAFNetLocal``)."""
    replace_global_pools(model, base_size, train_size, fast_imp)
    if example_input is None:
        example_input = torch.rand(train_size)
    with torch.no_grad():
        model(example_input)
    return model
