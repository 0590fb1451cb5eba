"""PSNRLoss: values equal the official NAFNet PSNRLoss (stored references in
tests/fixtures/nafnet/psnr_loss.pt); it is -PSNR (negative by design)."""
import math
import os

import pytest
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from gimsanet_arch.losses.psnr_loss import PSNRLoss

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures', 'nafnet', 'psnr_loss.pt')


def test_registered_and_buildable():
    from basicsr.losses import build_loss
    assert LOSS_REGISTRY.get('PSNRLoss') is PSNRLoss
    loss = build_loss(dict(type='PSNRLoss', loss_weight=0.5, reduction='mean', toY=True))
    assert isinstance(loss, PSNRLoss) and loss.loss_weight == 0.5 and loss.toY


@pytest.mark.parametrize('loss_weight', [1.0, 0.5])
@pytest.mark.parametrize('toY', [False, True])
def test_matches_official(loss_weight, toY):
    ref = torch.load(FIX, map_location='cpu', weights_only=True)
    value = PSNRLoss(loss_weight=loss_weight, toY=toY)(ref['pred'], ref['target'])
    expected = ref['values'][f'lw{loss_weight}_toY{toY}']
    print(f'PSNRLoss(loss_weight={loss_weight}, toY={toY}) = {value.item():.6f}, official {expected.item():.6f}')
    assert torch.allclose(value, expected, atol=1e-5, rtol=0)


def test_is_negative_psnr():
    pred = torch.full((2, 1, 4, 4), 0.5)
    target = pred + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    psnr = torch.tensor([20.0, 40.0])  # 10 log10(1 / mse), mse = 1e-2, 1e-4
    value = PSNRLoss()(pred, target)
    assert value < 0
    assert torch.allclose(value, -psnr.mean(), atol=1e-3)
    assert math.isfinite(PSNRLoss()(pred, pred).item())  # 1e-8 guard: -80 dB
    assert torch.allclose(PSNRLoss()(pred, pred), torch.tensor(-80.0), atol=1e-3)


def test_gradient_and_state():
    pred = torch.rand(2, 3, 5, 5, requires_grad=True)
    PSNRLoss(toY=True)(pred, torch.rand(2, 3, 5, 5)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert len(PSNRLoss().state_dict()) == 0


def test_rejects_other_reductions_and_shapes():
    with pytest.raises(ValueError):
        PSNRLoss(reduction='sum')
    with pytest.raises(ValueError):
        PSNRLoss()(torch.rand(3, 4, 4), torch.rand(3, 4, 4))
