"""GradientLoss: zero for identical images, correct values and gradients."""
import pytest
import torch

from basicsr.losses import build_loss
from gimsanet_arch.archs.gradient_util import image_gradients


def test_zero_for_identical_images():
    loss = build_loss({'type': 'GradientLoss', 'loss_weight': 1.0})
    x = torch.rand(2, 3, 12, 13)
    assert loss(x, x).item() == 0
    assert loss(x, x + 0.25).item() < 1e-6  # a constant offset has no gradient (up to rounding)


@pytest.mark.parametrize('operator, slope_response', [('sobel', 8.0), ('central', 1.0)])
def test_value_on_a_ramp(operator, slope_response):
    ramp = torch.arange(8.).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    flat = torch.zeros_like(ramp)
    loss = build_loss({'type': 'GradientLoss', 'operator': operator, 'reduction': 'sum'})
    gx, _ = image_gradients(ramp, operator)
    # interior columns respond with the operator's slope; replicate-padded borders with half of it
    assert gx[..., 1:-1].unique().tolist() == [slope_response]
    assert loss(ramp, flat).item() == pytest.approx(gx.abs().sum().item())


def test_weight_reduction_and_charbonnier():
    a, b = torch.rand(2, 1, 9, 9), torch.rand(2, 1, 9, 9)
    base = build_loss({'type': 'GradientLoss'})(a, b)
    assert build_loss({'type': 'GradientLoss', 'loss_weight': 0.5})(a, b).item() == pytest.approx(base.item() / 2)
    none = build_loss({'type': 'GradientLoss', 'reduction': 'none'})(a, b)
    assert none.shape == a.shape and none.mean().item() == pytest.approx(base.item(), rel=1e-5)
    charb = build_loss({'type': 'GradientLoss', 'criterion': 'charbonnier', 'eps': 1e-6})(a, b)
    assert charb.item() == pytest.approx(base.item(), rel=1e-2)
    with pytest.raises(ValueError, match='criterion'):
        build_loss({'type': 'GradientLoss', 'criterion': 'l3'})


def test_gradcheck():
    loss = build_loss({'type': 'GradientLoss', 'criterion': 'charbonnier', 'eps': 1e-3})
    pred = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 2, 6, 7, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (pred, ))
    l1 = build_loss({'type': 'GradientLoss'})
    assert torch.autograd.gradcheck(lambda p: l1(p, target), (pred, ), atol=1e-5)
