"""PSNR loss of NAFNet (megvii-research/NAFNet), written for this package."""
import math

import torch
import torch.nn as nn
from basicsr.utils.registry import LOSS_REGISTRY

# ITU-R BT.601 RGB -> Y for images in [0, 1] (result in [16, 235] / 255)
_Y_COEF = (65.481, 128.553, 24.966)


@LOSS_REGISTRY.register()
class PSNRLoss(nn.Module):
    """Negative PSNR: ``loss_weight * 10/ln(10) * mean_over_batch(ln(MSE_i + 1e-8))``.

    The value is NEGATIVE BY DESIGN: for images in [0, 1] it is ``-PSNR`` (dB) averaged over the
    batch (``PSNR_i = -10 log10(MSE_i)``), so minimising it maximises PSNR; a loss of -40 means
    about 40 dB. The per-image MSE runs over channels and pixels; 1e-8 guards ``log(0)``.

    Args:
        loss_weight (float): multiplier.
        reduction (str): only 'mean' (over the batch) is supported, as in the release.
        toY (bool): compare the BT.601 luma (``(65.481 R + 128.553 G + 24.966 B + 16) / 255``)
            of RGB inputs in [0, 1] instead of all channels.
    """

    def __init__(self, loss_weight=1.0, reduction='mean', toY=False):
        super().__init__()
        if reduction != 'mean':
            raise ValueError(f"PSNRLoss supports reduction='mean' only, got {reduction!r}")
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.scale = 10 / math.log(10)
        self.toY = toY
        self.coef = torch.tensor(_Y_COEF).reshape(1, 3, 1, 1)  # not a buffer: kept out of state_dict

    def forward(self, pred, target):
        if pred.dim() != 4:
            raise ValueError(f'PSNRLoss expects (N, C, H, W) tensors, got shape {tuple(pred.shape)}')
        if self.toY:
            coef = self.coef.to(pred.device)
            pred = ((pred * coef).sum(dim=1, keepdim=True) + 16.) / 255.
            target = ((target * coef).sum(dim=1, keepdim=True) + 16.) / 255.
        mse = ((pred - target)**2).mean(dim=(1, 2, 3))
        return self.loss_weight * self.scale * torch.log(mse + 1e-8).mean()
