"""Pad, tile, self-ensemble and run a network over an NCHW image tensor: the one inference path of
the package (denoise command, validation, comparison, benchmark).

Everything here works on tensors of any size and never holds more than one batch of tiles on the
compute device: the image and the blended output stay where the input lives (usually the CPU), so
the device memory a tiled run needs is set by the tile, not by the image.

The fast path is the default (:func:`run`): the input in channels_last memory format, which puts
every convolution on oneDNN's (or cuDNN's) NHWC kernels, and bf16 autocast where the device has
native bf16 units (:func:`resolve_dtype`). ``dtype='fp32'`` forces float32; ``channels_last=False``
runs the plain contiguous layout. :func:`prepare_network` puts the weights in the same layout
and can ``torch.compile`` the network.
"""
import contextlib

import torch
from torch.nn import functional as F


def pad_to_multiple(img, multiple):
    """Reflect-pad an NCHW tensor at the bottom/right up to a multiple of ``multiple`` (replicate
    where the image is too small to reflect)."""
    h, w = img.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return img
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    return F.pad(img, (0, pad_w, 0, pad_h), mode=mode)


def to_channels_last(x):
    """An NCHW tensor in channels_last memory format, unambiguously: a 1-channel (gray) tensor is
    contiguous in both formats and torch then runs the network contiguous; its channels_last clone
    (a copy of one channel) has the strides that say otherwise."""
    if x.dim() != 4 or (x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.clone(memory_format=torch.channels_last)


def forward_padded(net, img, multiple=1, channels_last=False):
    """``net`` on ``img`` padded to ``multiple`` and cropped back; a list/tuple output (multi-stage
    nets) gives its last element. ``channels_last``: the padded input is handed over in that
    memory format (the padding copy may not keep it)."""
    h, w = img.shape[-2:]
    x = pad_to_multiple(img, multiple) if multiple > 1 else img
    out = net(to_channels_last(x) if channels_last else x)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    return out[..., :h, :w]


# ------------------------------------------------------------------------------------ self-ensemble
def _transform(x, k):
    """The k-th of the 8 dihedral transforms (k = 4 * flip + rotations)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _inverse(x, k):
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def self_ensemble(forward, img):
    """Mean of ``forward`` over the 8 flips/rotations of ``img``, each mapped back (x8 ensemble)."""
    total = None
    for k in range(8):
        out = _inverse(forward(_transform(img, k)), k)
        total = out if total is None else total + out
    return total / 8


# ------------------------------------------------------------------------------------ tiling
def tile_starts(length, tile, overlap):
    """Start offsets of windows of ``tile`` pixels covering ``length`` with at least ``overlap``
    pixels shared between neighbours; the last window ends at the border."""
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


RAMP_MAX = 16  # widest cross-fade between neighbouring tiles, in pixels


def blend_margin(overlap):
    """``(margin, ramp)`` of an overlap: on each shared side a window discards its outer ``margin``
    pixels (where its own border padding changes the output) and cross-fades over the next
    ``ramp`` pixels; ``2 * margin + ramp == overlap``. The ramp is at most :data:`RAMP_MAX`, so
    the output equals the whole-image output wherever the network's receptive-field radius is at
    most ``margin`` (about ``overlap / 2 - 8``): an overlap at least the receptive field's size
    plus 16 pixels is exact, and smaller ones still leave no visible seams."""
    ramp = min(overlap // 4, RAMP_MAX)
    if (overlap - ramp) % 2:
        ramp += 1
    return (overlap - ramp) // 2, ramp


def edge_weights(n, overlap, lead_inside, trail_inside):
    """1-D blend weights of a window of ``n`` pixels: sides on the image border keep weight 1; a
    side shared with a neighbour (``*_inside``) is 0 over the margin, then ramps linearly to 1 (see
    :func:`blend_margin`). Two neighbours' weights sum to 1 across an overlap of ``overlap``."""
    weights = torch.ones(n, dtype=torch.float64)
    margin, ramp = blend_margin(overlap)
    edge = torch.cat([torch.zeros(margin, dtype=torch.float64),
                      torch.arange(1, ramp + 1, dtype=torch.float64) / (ramp + 1)])[:n]
    if overlap > 0 and lead_inside:
        weights[:edge.numel()] = edge
    if overlap > 0 and trail_inside:
        weights[n - edge.numel():] = torch.minimum(weights[n - edge.numel():], edge.flip(0))
    return weights


def blend_window(h, w, overlap, inside=(False, False, False, False)):
    """2-D weights of one window; ``inside`` says which of (top, bottom, left, right) border a
    neighbouring window rather than the image edge."""
    top, bottom, left, right = inside
    return (edge_weights(h, overlap, top, bottom)[:, None] * edge_weights(w, overlap, left, right)[None, :]).float()


def tiled_forward(forward, img, tile, overlap=32, blend='ramp', starts=None, batch_size=1, device=None,
                  progress=None):
    """Run ``forward`` on overlapping windows of ``img`` and blend them into one output.

    Args:
        forward: callable on an NCHW tensor (e.g. ``lambda t: forward_padded(net, t, 8)``).
        img: NCHW tensor (batch 1 for ``batch_size`` > 1).
        tile: window size, an int or ``(h, w)``.
        overlap: pixels shared by neighbours; with ``blend='ramp'`` the output equals the
            whole-image output wherever the network's receptive-field radius is at most the
            margin of :func:`blend_margin` (about ``overlap / 2 - 8``).
        blend: ``'ramp'`` (see :func:`edge_weights`) or ``'uniform'`` (plain average of the
            overlaps, as NAFNet's official ``grids()``).
        starts: ``(row starts, column starts)`` to use instead of :func:`tile_starts`.
        batch_size: windows forwarded together.
        device: where ``forward`` runs (default: ``img``'s device); each batch of windows is moved
            there and its result back, so only one batch is on the device at a time.
        progress: optional callable ``progress(n)`` called after each batch with its window count.
    """
    n, _, h, w = img.shape
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    tile_h, tile_w = min(tile_h, h), min(tile_w, w)
    if starts is None:
        if overlap >= min(tile_h, tile_w) and (tile_h < h or tile_w < w):
            raise ValueError(f'tile overlap ({overlap}) must be smaller than the tile ({tile_h}x{tile_w})')
        starts = (tile_starts(h, tile_h, overlap), tile_starts(w, tile_w, overlap))
    boxes = [(top, left) for top in starts[0] for left in starts[1]]
    if batch_size > 1 and n != 1:
        raise ValueError('tiled_forward: batch_size > 1 needs a batch of one image')
    device = torch.device(device) if device is not None else img.device
    last_top, last_left = starts[0][-1], starts[1][-1]
    windows = {}
    out = weight = None
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first:first + batch_size]
        patches = torch.cat([img[..., t:t + tile_h, l:l + tile_w] for t, l in chunk], dim=0)
        result = forward(patches.to(device)).to(img.device, torch.float32)
        if out is None:
            out = torch.zeros(n, result.shape[1], h, w, dtype=torch.float32, device=img.device)
            weight = torch.zeros(1, 1, h, w, dtype=torch.float32, device=img.device)
        for index, (top, left) in enumerate(chunk):
            inside = (top > 0, top < last_top, left > 0, left < last_left) if blend == 'ramp' else (False,) * 4
            if inside not in windows:
                windows[inside] = blend_window(tile_h, tile_w, overlap, inside).to(img.device)
            window = windows[inside]
            part = result[index * n:(index + 1) * n]
            out[..., top:top + tile_h, left:left + tile_w] += part * window
            weight[..., top:top + tile_h, left:left + tile_w] += window
        if progress is not None:
            progress(len(chunk))
    return out / weight


# ------------------------------------------------------------------------------------ one entry point
def tile_count(height, width, tile, overlap):
    """How many windows :func:`run` uses for an image (1 without tiling)."""
    if not tile:
        return 1
    return len(tile_starts(height, min(tile, height), overlap)) * len(tile_starts(width, min(tile, width), overlap))


DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}
DTYPE_CHOICES = ('auto',) + tuple(DTYPES)  # what --dtype and val.dtype accept


def bf16_supported(device):
    """Whether ``device`` runs bf16 natively (CPU: AVX512-BF16/AMX through oneDNN; GPU: Ampere or
    newer), i.e. whether bf16 is a speed-up there rather than an emulation."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(name, device):
    """The compute dtype of ``name`` on ``device``: ``'auto'`` (or None) is bf16 where the device
    computes it natively (:func:`bf16_supported`) and float32 elsewhere; ``'fp32'`` and
    ``'bf16'`` force one. ``torch.float32`` / ``torch.bfloat16`` are returned as they are."""
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise ValueError(f'unsupported inference dtype {name}: expected torch.float32 or torch.bfloat16')
        return name
    key = 'auto' if name is None else str(name).lower()
    if key == 'auto':
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if key not in DTYPES:
        raise ValueError(f'unknown dtype {name!r}: expected one of {", ".join(DTYPE_CHOICES)}')
    return DTYPES[key]


def autocast_context(device, dtype):
    """bf16 autocast on ``device`` when ``dtype`` is ``torch.bfloat16``. For float32, autocast is
    switched off, so that an enclosing autocast region (validation inside a bf16 training step)
    cannot lower it."""
    device_type = torch.device(device).type
    if dtype in (None, torch.float32):
        return torch.autocast(device_type, enabled=False) if device_type in ('cpu', 'cuda') else \
            contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


def prepare_network(net, channels_last=True, compile=False):
    """``net`` ready for :func:`run`: eval mode, its 4-D weights in channels_last (or, with
    ``channels_last=False``, contiguous) memory format, and with ``compile`` wrapped by
    ``torch.compile`` (compiled on the first call; inductor on CPU needs a C++ compiler).

    Returns the network to call. Idempotent: a network this returned comes back as it is (a
    compiled one is not wrapped again). The weights are converted in place, so ``net`` itself
    changes too; anything that is not an ``nn.Module`` is returned untouched."""
    if not isinstance(net, torch.nn.Module):
        return net
    module = getattr(net, '_orig_mod', net)  # the network inside a torch.compile wrapper
    module.eval()
    module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if compile and module is net:
        net = torch.compile(module)
    return net


def make_forward(net, multiple=1, dtype=None, channels_last=True, device=None, ensemble=False):
    """The network as a function of an NCHW batch on its device, returning float32: padded to
    ``multiple`` and cropped back, in channels_last memory format (``channels_last``), under the
    autocast of ``dtype`` (see :func:`resolve_dtype`; resolved for ``device``, default the
    batch's), optionally as the mean of the 8 flips/rotations (``ensemble``). :func:`run` and the
    validation of the official model types call the network through this."""
    def one(x):
        return forward_padded(net, x, multiple, channels_last)

    def forward(x):
        where = device if device is not None else x.device
        with autocast_context(where, resolve_dtype(dtype, where)):
            return (self_ensemble(one, x) if ensemble else one(x)).float().contiguous()

    return forward


@torch.no_grad()
def run(net, img, multiple=1, tile=None, overlap=32, ensemble=False, dtype=None, channels_last=True, device=None,
        progress=None):
    """Denoise ``img`` (NCHW float) with ``net``: the whole pipeline every caller uses.

    Pads to ``multiple`` (and crops back), optionally in overlapping ``tile`` windows blended with
    a ramp over ``overlap`` pixels, optionally as the mean of the 8 flips/rotations
    (``ensemble``). The defaults are the fast path: channels_last input and ``dtype`` None,
    i.e. ``'auto'`` (bf16 autocast where the device has native bf16, else float32; see
    :func:`resolve_dtype`; ``'fp32'`` forces float32). The network runs on ``device`` (default:
    the input's); the float32 output, in contiguous memory format, is returned on the input's
    device. Tiled output equals whole-image output wherever the overlap covers the receptive field,
    and one window covering the image is exactly the whole-image path.
    """
    device = torch.device(device) if device is not None else img.device
    forward = make_forward(net, multiple, resolve_dtype(dtype, device), channels_last, device, ensemble)
    h, w = img.shape[-2:]
    if tile and tile_count(h, w, tile, overlap) > 1:
        return tiled_forward(forward, img, tile, overlap, device=device, progress=progress)
    out = forward(img.to(device)).to(img.device)
    if progress is not None:
        progress(1)
    return out
