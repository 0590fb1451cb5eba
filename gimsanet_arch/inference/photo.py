"""A stored image (8/16-bit, gray, colour or with alpha, OpenCV's BGR order) through a network and
back into the same layout and bit depth: what the denoise command does to each file.

The network sees float RGB (or gray) in [0, 1] with the channel count it was built for: a colour
image for a gray model is converted with OpenCV's BGR->gray, a gray image for a colour model is
replicated to three channels, and the output is brought back to the input's layout (gray stays
gray); alpha is kept as it was.
"""
import dataclasses

import cv2
import numpy as np
import torch

from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
from gimsanet_arch.inference import engine
from gimsanet_prep.images import drop_alpha, from_float, to_float
from gimsanet_prep.orientation import read_oriented


@dataclasses.dataclass
class Layout:
    """How a stored image was laid out, to give the output the same form."""
    dtype: np.dtype
    channels: int  # 1 or 3 (without alpha)
    alpha: object = None  # the alpha plane, or None
    conversion: str = ''  # 'color->gray' / 'gray->color' when the model wanted the other kind


def read_photo(path, keep_orientation=False):
    """The image file ``path`` as viewers show it (its EXIF / TIFF orientation applied exactly once,
    whichever decoder would have applied it), or as stored with ``keep_orientation``."""
    return read_oriented(path, keep=keep_orientation)


def kind(img):
    """``'gray'`` or ``'color'``: the kind of a stored image (alpha does not count)."""
    return 'gray' if img.ndim == 2 or img.shape[2] in (1, 2) else 'color'


def to_network_input(img, in_ch):
    """``(float32 HxWxC RGB/gray in [0, 1] with C == in_ch, Layout)`` of a stored image."""
    alpha = img[:, :, -1] if img.ndim == 3 and img.shape[2] in (2, 4) else None
    img = drop_alpha(img)
    img = img[:, :, None] if img.ndim == 2 else img
    layout = Layout(img.dtype, img.shape[2], alpha)
    x = to_float(img)
    if in_ch == 1 and layout.channels == 3:
        x, layout.conversion = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[:, :, None], 'color->gray'
    elif in_ch == 3 and layout.channels == 1:
        x, layout.conversion = np.repeat(x, 3, axis=2), 'gray->color'
    elif in_ch == 3:
        x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(x), layout


def from_network_output(y, layout):
    """The network's float output (HxWxC RGB/gray) as a stored image in ``layout``: the input's
    bit depth, gray if the input was gray, alpha re-attached (a gray output drops a colour
    image's alpha, as OpenCV cannot write gray + alpha)."""
    if y.shape[2] == 3:
        y = cv2.cvtColor(y, cv2.COLOR_RGB2BGR)
        if layout.conversion == 'gray->color':
            y = cv2.cvtColor(y, cv2.COLOR_BGR2GRAY)[:, :, None]
    out = from_float(y, layout.dtype)
    if layout.alpha is not None and out.ndim == 3 and out.shape[2] == 3:
        out = np.concatenate([out, layout.alpha[:, :, None]], axis=2)
    elif layout.alpha is not None and out.ndim == 2 and layout.channels == 1:
        out = np.repeat(out[:, :, None], 3, axis=2)
        out = np.concatenate([out, layout.alpha[:, :, None]], axis=2)
    return out


def run_on_array(net, x, multiple=1, **run_options):
    """HxWxC float32 -> the network's output in the same layout (float32), through the engine."""
    tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float()
    return engine.run(net, tensor, multiple, **run_options)[0].numpy().transpose(1, 2, 0)


def metric_image(x, dtype):
    """A float image as BasicSR's metrics see a stored one: quantised to ``dtype``, on a 0..255 scale
    (exactly the uint8 values for 8-bit images)."""
    peak = 255. if np.dtype(dtype) == np.uint8 else 65535.
    q = (np.clip(x, 0, 1) * peak).round()
    return q * (255. / peak)


def denoise_stored(net, img, in_ch, multiple=1, sigma=None, seed=0, **run_options):
    """Denoise a stored image. With ``sigma``, seeded test noise is added first (the standard
    protocol of docs/evaluation.md) and PSNR/SSIM against the clean input are returned.

    Returns ``(output image, layout, scores)``; ``scores`` is ``{'psnr', 'ssim', 'psnr_noisy'}`` or None.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim
    x, layout = to_network_input(img, in_ch)
    clean = x
    if sigma is not None:
        x = add_noise_as_stored(clean, layout, sigma, seed)
    y = run_on_array(net, x, multiple, **run_options)
    out = from_network_output(y, layout)
    scores = None
    if sigma is not None:  # on what is written, against the clean image in the same form
        ref = _stored_metric_image(from_network_output(clean, layout))
        written = _stored_metric_image(out)
        scores = {'psnr': float(calculate_psnr(written, ref, crop_border=0)),
                  'ssim': float(calculate_ssim(written, ref, crop_border=0)),
                  'psnr_noisy': float(calculate_psnr(_stored_metric_image(from_network_output(x, layout)), ref,
                                                     crop_border=0))}
    return out, layout, scores


def add_noise_as_stored(x, layout, sigma, seed=0):
    """The seeded test noise on the network input ``x``, drawn in the channels the image really has:
    a gray image given to a colour model gets one noise plane, copied to the three channels (a
    noisy gray photo), not three independent ones that the gray output would then average away."""
    if layout.conversion == 'gray->color':
        noisy = add_test_noise(np.ascontiguousarray(x[:, :, :1]), sigma, seed=seed, channel_order='rgb')
        return np.repeat(noisy, 3, axis=2)
    return add_test_noise(x, sigma, seed=seed, channel_order='rgb')


def _stored_metric_image(stored):
    """A stored image (alpha dropped) on the 0..255 scale of BasicSR's metrics."""
    img = drop_alpha(stored).astype(np.float64)
    return img * (255. / 65535.) if stored.dtype == np.uint16 else img
