"""Gradient-aware loss: compares image gradients of the output and the target.

Uses the package's one gradient implementation (``archs.gradient_util.image_gradients``), the same
module GIMSANet's gradient branch lives in.
"""
from torch import nn

from basicsr.losses.basic_loss import charbonnier_loss, l1_loss
from basicsr.utils.registry import LOSS_REGISTRY
from gimsanet_arch.archs.gradient_util import image_gradients

_CRITERIA = {'l1': l1_loss, 'charbonnier': charbonnier_loss}


@LOSS_REGISTRY.register()
class GradientLoss(nn.Module):
    """L1 or Charbonnier distance between per-channel image gradients (d/dx and d/dy).

    Args:
        loss_weight (float): weight of this loss. Default 1.0.
        reduction (str): 'mean' | 'sum' | 'none' (as BasicSR's losses).
        criterion (str): 'l1' | 'charbonnier'. Default 'l1'.
        operator (str): 'sobel' (3x3 Sobel, unit ramp -> 8) | 'central' (central difference,
            unit ramp -> 1). Default 'sobel'.
        eps (float): Charbonnier epsilon (inside the square root). Default 1e-12, as BasicSR.

    In ``train:`` of an option file: ``grad_opt: {type: GradientLoss, loss_weight: 0.1}``;
    the model logs it as ``l_grad``. Identical images give exactly 0.
    """

    def __init__(self, loss_weight=1.0, reduction='mean', criterion='l1', operator='sobel', eps=1e-12):
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'GradientLoss: reduction must be none, mean or sum, got {reduction}')
        if criterion not in _CRITERIA:
            raise ValueError(f'GradientLoss: criterion must be one of {sorted(_CRITERIA)}, got {criterion}')
        if operator not in ('sobel', 'central'):
            raise ValueError(f'GradientLoss: operator must be sobel or central, got {operator}')
        self.loss_weight, self.reduction = loss_weight, reduction
        self.criterion, self.operator, self.eps = criterion, operator, eps

    def forward(self, pred, target, weight=None, **kwargs):
        pred_gx, pred_gy = image_gradients(pred, self.operator)
        target_gx, target_gy = image_gradients(target, self.operator)
        extra = {'eps': self.eps} if self.criterion == 'charbonnier' else {}
        fn = _CRITERIA[self.criterion]
        loss_x = fn(pred_gx, target_gx, weight, reduction=self.reduction, **extra)
        loss_y = fn(pred_gy, target_gy, weight, reduction=self.reduction, **extra)
        return self.loss_weight * (loss_x + loss_y)
