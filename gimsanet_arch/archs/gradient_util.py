"""Fixed image-gradient operators: the one implementation used by the whole package.

Two users, two conventions:

* ``gradient_map`` / ``GradientMap``: GIMSANet's fixed gradient branch
  (docs/gimsanet-spec.md#gradient-branch). It maps a ``(B, C, H, W)`` image to a 1-channel magnitude
  ``sqrt(Gh^2 + Gv^2)``. **Zero padding**, because that is what the official Keras
  ``Conv2D(padding='same')`` does (faithful: borders light up).
* ``image_gradients``: per-channel ``(gx, gy)`` for losses (the project's GradientLoss). **Replicate
  padding**, so that a loss does not see artificial edges at the image border; the result is
  differentiable and has the input's shape.

Kernels are ``(out, in, 3, 3)`` cross-correlation weights in torch layout, rows = i (y), cols = j (x).
"""
import torch
import torch.nn.functional as F
from torch import nn

GRAD_MODES = ('official', 'sobel_luma', 'sobel_color')
IMAGE_GRADIENT_OPERATORS = ('sobel', 'central')

# 1-D building blocks: a derivative s and a 1-2-1 smoother t
# (the notation of docs/gimsanet-spec.md#gradient-branch)
_S = (-1.0, 0.0, 1.0)
_T = (1.0, 2.0, 1.0)


def sobel_kernels(dtype=torch.float32, device=None):
    """True Sobel pair ``(Sx, Sy)``, each ``(3, 3)``: ``Sx = [[-1,0,1],[-2,0,2],[-1,0,1]]``, ``Sy = Sx^T``.

    Unnormalised (cv2 convention): a unit-slope ramp along x gives ``Sx`` response 8.
    """
    s = torch.tensor(_S, dtype=dtype, device=device)
    t = torch.tensor(_T, dtype=dtype, device=device)
    sx = torch.outer(t, s)  # rows smoothed, columns differentiated
    return sx, sx.t().contiguous()


def official_color_kernels(dtype=torch.float32, device=None):
    """The official colour kernels exactly as the Keras tensor is laid out
    (docs/gimsanet-spec.md#the-official-colour-kernels-as-keras-lays-them-out).

    The author's nested list has shape (3, 3, 3, 1), and Keras reads axis 0 as the kernel *row*, not
    the channel as the code comments say. In torch layout ``W[0, c, i, j]``:

    * ``Gh[0, c, i, j] = s_c * t_i``: 1-2-1 vertical / box horizontal smoothing of ``ch2 - ch0``, a
      colour difference rather than a derivative;
    * ``Gv[0, c, i, j] = t_c * s_i``: Prewitt-y of ``ch0 + 2 ch1 + ch2``, a real d/dy.

    So the map has no d/dx component. Kept on purpose: it is what the released weights were trained
    with. Returns ``(Gh, Gv)``, each ``(1, 3, 3, 3)``.
    """
    s = torch.tensor(_S, dtype=dtype, device=device)
    t = torch.tensor(_T, dtype=dtype, device=device)
    ones = torch.ones(3, dtype=dtype, device=device)
    gh = s[:, None, None] * t[None, :, None] * ones[None, None, :]  # (c, i, j)
    gv = t[:, None, None] * s[None, :, None] * ones[None, None, :]
    return gh.unsqueeze(0), gv.unsqueeze(0)


def gradient_kernels(in_channels, mode, dtype=torch.float32, device=None):
    """Build the fixed weights for ``mode`` and ``in_channels``.

    Returns ``(weight, groups)`` for one ``F.conv2d`` producing the stacked components:

    * ``official`` / ``sobel_luma``: ``weight`` is ``(2, C, 3, 3)`` = [Gh; Gv], ``groups = 1``;
    * ``sobel_color``: ``weight`` is ``(2C, 1, 3, 3)`` = [Sx, Sy] per channel, ``groups = C``.

    With 1 channel, ``official`` and ``sobel_luma`` are both the plain Sobel pair (the lab's gray
    nets use a true Sobel; docs/gimsanet-spec.md#gray-kernels-not-released), and ``sobel_color`` gives
    the same magnitude.
    """
    if mode not in GRAD_MODES:
        raise ValueError(f'grad mode must be one of {GRAD_MODES} (or "none" in the arch), got {mode!r}')
    sx, sy = sobel_kernels(dtype, device)
    if mode == 'sobel_color':
        per_channel = torch.stack([sx, sy]).unsqueeze(1)  # (2, 1, 3, 3)
        return per_channel.repeat(in_channels, 1, 1, 1), in_channels
    if in_channels == 1:
        return torch.stack([sx, sy]).unsqueeze(1), 1
    if mode == 'official':
        if in_channels != 3:
            raise ValueError(f'grad_mode "official" is defined for 1 or 3 channels, got {in_channels}')
        gh, gv = official_color_kernels(dtype, device)
        return torch.cat([gh, gv], dim=0), 1
    # sobel_luma: Sobel on a luma-like channel mix. a = (1, 2, 1)/4 for RGB/BGR (order-invariant, same
    # channel weights as the author's kernels); equal weights for any other channel count.
    if in_channels == 3:
        a = torch.tensor(_T, dtype=dtype, device=device) / 4.0
    else:
        a = torch.full((in_channels,), 1.0 / in_channels, dtype=dtype, device=device)
    wh = a[:, None, None] * sx[None]
    wv = a[:, None, None] * sy[None]
    return torch.stack([wh, wv]), 1


def _magnitude(x, weight, groups: int, eps: float):
    """``sqrt`` of the sum of squares of the conv components (zero padding, as Keras 'same')."""
    comps = F.conv2d(x, weight, padding=1, groups=groups)
    sq = (comps * comps).sum(dim=1, keepdim=True)
    if eps > 0:
        sq = sq + eps
    # a sum of squares is never negative, so K.sqrt's clamp at 0 is a no-op here; no epsilon unless
    # asked for: the official branch is exact with eps = 0
    return torch.sqrt(sq)


def gradient_map(x, mode='official', eps=0.0):
    """1-channel gradient magnitude of ``x`` (B, C, H, W) for ``mode`` in ``GRAD_MODES``.

    Zero padding (faithful to Keras 'same'). ``eps`` is added inside the sqrt; keep 0 to reproduce the
    official network, use ~1e-12 only when gradients must flow back through the map (the sqrt has an
    infinite derivative at 0, so flat regions would give NaN gradients otherwise).
    Values on known patterns: see ``tests/archs/test_gradient_util.py``.
    """
    weight, groups = gradient_kernels(x.shape[1], mode, dtype=x.dtype, device=x.device)
    return _magnitude(x, weight, groups, eps)


class GradientMap(nn.Module):
    """``gradient_map`` with its fixed kernels held as a non-persistent buffer.

    Non-persistent: the kernels are not in the state_dict (checkpoints hold only learned weights) and are
    not parameters (nothing to train, nothing for the optimizer). Buffers still follow ``.to()`` /
    ``.to('cuda')`` / ``.to(bfloat16)``. The project wraps DDP with ``broadcast_buffers=False``; the kernels
    are identical on every rank anyway.
    """

    def __init__(self, in_channels=3, mode='official'):
        super().__init__()
        weight, groups = gradient_kernels(in_channels, mode)
        self.in_channels = in_channels
        self.mode = mode
        self.groups = groups
        self.register_buffer('weight', weight, persistent=False)

    def forward(self, x, eps: float = 0.0):
        return _magnitude(x, self.weight.to(x.dtype), self.groups, eps)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, mode={self.mode!r}'


def image_gradients(x, operator='sobel'):
    """Per-channel spatial derivatives ``(gx, gy)`` of ``x`` (B, C, H, W), each of shape (B, C, H, W).

    ``gx`` is d/dx (along width, increasing to the right), ``gy`` is d/dy (along height, downwards).
    Differentiable (plain convs, no sqrt). **Replicate padding**: a constant image has zero gradient
    everywhere, borders included, so a loss sees no artificial edges.

    Operators and scale:

    * ``'sobel'``: unnormalised 3x3 Sobel (cv2 convention); a unit-slope ramp gives 8;
    * ``'central'``: central difference ``(f[x+1] - f[x-1]) / 2`` (numpy.gradient convention); a unit-slope
      ramp gives 1.
    """
    if x.dim() != 4:
        raise ValueError(f'image_gradients expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}')
    if operator == 'sobel':
        kx, ky = sobel_kernels(dtype=x.dtype, device=x.device)
    elif operator == 'central':
        kx = torch.zeros(3, 3, dtype=x.dtype, device=x.device)
        kx[1, 0], kx[1, 2] = -0.5, 0.5
        ky = kx.t().contiguous()
    else:
        raise ValueError(f'operator must be one of {IMAGE_GRADIENT_OPERATORS}, got {operator!r}')
    c = x.shape[1]
    weight = torch.stack([kx, ky]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): [x, y] per channel
    out = F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), weight, groups=c)
    out = out.view(x.shape[0], c, 2, x.shape[2], x.shape[3])
    return out[:, :, 0], out[:, :, 1]
