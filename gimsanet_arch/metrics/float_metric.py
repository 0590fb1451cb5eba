"""Metrics on the float output, for reproducing the GIMSANet paper's numbers (docs/evaluation.md).

The standard protocol (BasicSR's ``calculate_psnr`` / ``calculate_ssim``) scores the output clamped
and rounded to uint8. The official GIMSANet test script instead scores the raw float output (neither
clipped nor quantised) with scikit-image: PSNR with data range 1, and SSIM with ``channel_axis=-1``
and no ``data_range``, which on scikit-image 0.19 means data range 2 (the float dtype range -1..1):
an inflated SSIM. ``calculate_ssim_float(data_range=2)`` reproduces that number; report it only next
to the standard one.

Functions marked ``float_input`` receive ``img`` / ``img2`` as float HxWxC arrays (the network output
unclipped, and the clean image in [0, 1]) from :class:`~gimsanet_arch.models.denoise_model.DenoiseModel`.
"""
import numpy as np

from basicsr.utils.registry import METRIC_REGISTRY


def _float_input(fn):
    fn.float_input = True
    return fn


def _crop(img, crop_border):
    return img[crop_border:-crop_border, crop_border:-crop_border] if crop_border else img


@METRIC_REGISTRY.register()
@_float_input
def calculate_psnr_float(img, img2, crop_border=0, data_range=1.0, **kwargs):
    """PSNR of float images (no clipping, no rounding), as skimage's ``peak_signal_noise_ratio``."""
    img, img2 = _crop(np.asarray(img, np.float64), crop_border), _crop(np.asarray(img2, np.float64), crop_border)
    mse = np.mean((img - img2)**2)
    return float('inf') if mse == 0 else float(10 * np.log10(data_range**2 / mse))


@METRIC_REGISTRY.register()
@_float_input
def calculate_ssim_float(img, img2, crop_border=0, data_range=1.0, win_size=7, **kwargs):
    """SSIM of float images with scikit-image's defaults (7x7 uniform window, K1 0.01, K2 0.03,
    sample covariance), averaged over channels. ``data_range: 2`` reproduces the paper's value."""
    from skimage.metrics import structural_similarity
    img, img2 = _crop(np.asarray(img, np.float64), crop_border), _crop(np.asarray(img2, np.float64), crop_border)
    channel_axis = -1 if img.ndim == 3 and img.shape[2] > 1 else None
    if channel_axis is None and img.ndim == 3:
        img, img2 = img[..., 0], img2[..., 0]
    return float(structural_similarity(img2, img, data_range=data_range, win_size=win_size,
                                       channel_axis=channel_axis))
