"""The official Restormer / NAFNet ``calculate_psnr`` and ``calculate_ssim`` (swz30/Restormer,
megvii-research/NAFNet; written anew), registered as ``calculate_psnr_official`` and
``calculate_ssim_official`` because BasicSR already owns the plain names.

They differ from BasicSR's in what they accept and in their peak:

* images are numpy arrays (``input_order`` HWC or CHW) or tensors (CHW or 1xCxHxW, scored as
  they are: not clamped, not rounded), converted to float64;
* the peak is 1 when the first image's maximum is <= 1, else 255 (so they score both uint8
  images and raw float outputs);
* SSIM is by default the official 3-D variant: an 11x11x11 Gaussian window (sigma 1.5) across
  height, width and channels with replicate padding; ``ssim3d=False`` gives the official 2-D one
  (valid region only), ``test_y_channel`` the Y-channel one (replicate border, peak 255).

The official option files say ``type: calculate_psnr``; the official model types map those names
to these (``gimsanet_arch.models.official_compat_model``).
"""
import cv2
import numpy as np
import torch
from torch.nn import functional as F

from basicsr.metrics.metric_util import reorder_image, to_y_channel
from basicsr.utils.registry import METRIC_REGISTRY


def _to_hwc64(img):
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu()
        if img.ndim == 4:
            img = img.squeeze(0)
        img = img.numpy().transpose(1, 2, 0)
    return np.asarray(img).astype(np.float64)


def _prepare(img, img2, crop_border, input_order):
    if input_order not in ('HWC', 'CHW'):
        raise ValueError(f'Wrong input_order {input_order}; use HWC or CHW')
    tensors = isinstance(img, torch.Tensor)
    img, img2 = _to_hwc64(img), _to_hwc64(img2)
    if not tensors:
        img = reorder_image(img, input_order=input_order).astype(np.float64)
        img2 = reorder_image(img2, input_order=input_order).astype(np.float64)
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes differ: {img.shape}, {img2.shape}')
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    return img, img2


@METRIC_REGISTRY.register()
def calculate_psnr_official(img, img2, crop_border=0, input_order='HWC', test_y_channel=False, **kwargs):
    """The official ``calculate_psnr``: numpy images or tensors, float64, peak 1 when
    ``img.max() <= 1`` else 255."""
    img, img2 = _prepare(img, img2, crop_border, input_order)
    if test_y_channel:
        img, img2 = to_y_channel(img), to_y_channel(img2)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float('inf')
    peak = 1. if img.max() <= 1 else 255.
    return float(20. * np.log10(peak / np.sqrt(mse)))


def _gaussian_window_3d():
    g = cv2.getGaussianKernel(11, 1.5)
    w2 = np.outer(g, g.transpose())
    return torch.tensor(np.stack([w2 * k for k in g[:, 0]], axis=0), dtype=torch.float32)[None, None]


def _ssim_3d(img, img2, peak):
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    kernel = _gaussian_window_3d()

    def filt(x):
        x = F.pad(x[None, None], (5, 5, 5, 5, 5, 5), mode='replicate')
        return F.conv3d(x, kernel)[0, 0]

    a = torch.from_numpy(img).float()
    b = torch.from_numpy(img2).float()
    mu1, mu2 = filt(a), filt(b)
    s1 = filt(a * a) - mu1 ** 2
    s2 = filt(b * b) - mu2 ** 2
    s12 = filt(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def _ssim_2d(img, img2, peak, border=None):
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(g, g.transpose())
    kw = {} if border is None else {'borderType': border}

    def filt(x):
        y = cv2.filter2D(x, -1, window, **kw)
        return y if border is not None else y[5:-5, 5:-5]

    mu1, mu2 = filt(img), filt(img2)
    s1 = filt(img ** 2) - mu1 ** 2
    s2 = filt(img2 ** 2) - mu2 ** 2
    s12 = filt(img * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


@METRIC_REGISTRY.register()
def calculate_ssim_official(img, img2, crop_border=0, input_order='HWC', test_y_channel=False, ssim3d=True,
                            **kwargs):
    """The official ``calculate_ssim`` (3-D SSIM by default; see the module docstring)."""
    img, img2 = _prepare(img, img2, crop_border, input_order)
    if test_y_channel:
        y1, y2 = to_y_channel(img), to_y_channel(img2)
        return _ssim_2d(y1[..., 0], y2[..., 0], 255, border=cv2.BORDER_REPLICATE)
    peak = 1 if img.max() <= 1 else 255
    if ssim3d:
        return _ssim_3d(img, img2, peak)
    return _ssim_2d(img, img2, peak)
