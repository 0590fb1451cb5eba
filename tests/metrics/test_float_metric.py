"""Float-output metrics of the GIMSANet paper protocol (docs/evaluation.md)."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY


def _pair(seed=0, shape=(24, 30, 3)):
    rng = np.random.default_rng(seed)
    clean = rng.random(shape).astype(np.float32)
    out = (clean + rng.normal(0, 0.08, shape)).astype(np.float32)  # unclipped, like the official output
    return clean, out


def test_psnr_float_equals_skimage_with_inferred_range():
    clean, out = _pair()
    expected = peak_signal_noise_ratio(clean, out)  # data range inferred from float dtype -> 1
    got = calculate_metric({'img': out, 'img2': clean}, {'type': 'calculate_psnr_float'})
    assert got == pytest.approx(expected, abs=1e-6)


def test_ssim_float_data_range_2_is_the_papers_inflated_value():
    clean, out = _pair(1)
    standard = calculate_metric({'img': out, 'img2': clean}, {'type': 'calculate_ssim_float'})
    paper = calculate_metric({'img': out, 'img2': clean}, {'type': 'calculate_ssim_float', 'data_range': 2})
    assert standard == pytest.approx(structural_similarity(clean.astype(np.float64), out, data_range=1,
                                                           channel_axis=-1), abs=1e-6)
    assert paper == pytest.approx(structural_similarity(clean.astype(np.float64), out, data_range=2,
                                                        channel_axis=-1), abs=1e-6)
    assert paper > standard
    gray = calculate_metric({'img': out[..., :1], 'img2': clean[..., :1]}, {'type': 'calculate_ssim_float'})
    assert 0 < gray < 1


def test_denoise_model_feeds_unclipped_float_output_to_float_metrics():
    from gimsanet_arch.models.denoise_model import DenoiseModel
    assert getattr(METRIC_REGISTRY.get('calculate_psnr_float'), 'float_input', False)
    gt = torch.full((1, 3, 8, 8), 0.5)
    output = gt.clone()
    output[..., 0, 0] = 1.5  # outside [0, 1]: uint8 scoring clips it, float scoring does not
    metrics = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
               'psnr_float': {'type': 'calculate_psnr_float'}}
    scores = DenoiseModel._image_metrics(DenoiseModel.__new__(DenoiseModel), metrics, output, gt)
    mse_float = (1.0**2) / 64
    assert scores['psnr_float'] == pytest.approx(10 * np.log10(1 / mse_float), abs=1e-4)
    mse_uint8 = (127.5 / 255)**2 / 64  # clipped to 1.0 (255) vs 0.5 (128 after rounding)
    assert scores['psnr'] > scores['psnr_float'] and abs(scores['psnr'] - 10 * np.log10(1 / mse_uint8)) < 0.1
