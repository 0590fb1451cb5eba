"""The official Restormer/NAFNet metrics, registered as calculate_psnr_official / calculate_ssim_official,
and how the official model types reach them from the official option files' metric names."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY
from gimsanet_arch.metrics.official_metric import calculate_psnr_official, calculate_ssim_official
from gimsanet_arch.models.official_compat_model import OFFICIAL_METRIC_TYPES


def test_official_metrics_float_rule():
    a = torch.rand(1, 3, 20, 20)
    b = (a + 0.01).clamp(0, 1)
    mse = ((a.double() - b.double()) ** 2).mean().item()
    peak = 1. if a.max() <= 1 else 255.
    assert calculate_psnr_official(a, b, 0) == pytest.approx(20 * np.log10(peak / np.sqrt(mse)))
    assert 0.9 < calculate_ssim_official(a, b, 0) <= 1.0
    assert calculate_ssim_official(a, a, 0) == pytest.approx(1.0)


def test_registered_beside_basicsrs_own():
    assert METRIC_REGISTRY.get('calculate_psnr_official') is calculate_psnr_official
    assert METRIC_REGISTRY.get('calculate_ssim_official') is calculate_ssim_official
    # the official option files say calculate_psnr / calculate_ssim: BasicSR's names stay BasicSR's
    assert OFFICIAL_METRIC_TYPES == {'calculate_psnr': 'calculate_psnr_official',
                                     'calculate_ssim': 'calculate_ssim_official'}
    assert METRIC_REGISTRY.get('calculate_psnr') is not calculate_psnr_official
    # through BasicSR's calculate_metric, on uint8-range images: peak 255, as BasicSR's PSNR
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 18, 3)).astype(np.float64)
    data = {'img': img, 'img2': np.clip(img + rng.normal(0, 5, img.shape), 0, 255)}
    assert calculate_metric(data, {'type': 'calculate_psnr_official', 'crop_border': 0}) == \
        pytest.approx(calculate_metric(data, {'type': 'calculate_psnr', 'crop_border': 0}))


@pytest.mark.parametrize('use_image', [True, False])
def test_official_models_score_the_official_names_with_the_official_metrics(use_image):
    from basicsr.utils import tensor2img
    from gimsanet_arch.models.official_compat_model import ImageCleanModel
    torch.manual_seed(0)
    gt = torch.rand(1, 3, 16, 16)
    out = gt + 0.05 * torch.randn_like(gt)
    model = SimpleNamespace(opt={'val': {'use_image': use_image}})
    model._result_image = lambda t: ImageCleanModel._result_image(model, t)
    metrics = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}, 'ssim': {'type': 'calculate_ssim'},
               'other': {'type': 'calculate_psnr_float'}}
    scores = ImageCleanModel._image_metrics(model, metrics, out, gt)
    # (after the call: the official tensor2img clamps ``out`` in place before the tensor metrics)
    img, img2 = (tensor2img([out]), tensor2img([gt])) if use_image else (out, gt)
    assert scores['psnr'] == calculate_psnr_official(img, img2, crop_border=0)
    assert scores['ssim'] == calculate_ssim_official(img, img2)
    # any other type goes to its registered metric, on the uint8 images
    assert scores['other'] == METRIC_REGISTRY.get('calculate_psnr_float')(tensor2img([out]), tensor2img([gt]))
