"""Padding to a size multiple inside the exported graph, so that an exported Restormer (which needs
H and W multiples of 8 and does not pad itself) takes images of any size.

The arithmetic is written with tensor-shape operations only and pads unconditionally (a pad of 0 is a
no-op), so tracers record it for symbolic sizes instead of baking in the example's size.
"""
import torch.nn.functional as F
from torch import nn


def reflect_pad_to_multiple(x, multiple: int):
    """Reflect-pad an NCHW tensor at the bottom/right up to a multiple of ``multiple`` (as the
    validation and inference code does). Reflection needs each pad to be smaller than the side, which
    holds for every image at least ``multiple`` pixels high and wide."""
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    return F.pad(x, [0, pad_w, 0, pad_h], mode='reflect')


class PadToMultiple(nn.Module):
    """``net`` on the input reflect-padded to ``multiple``, output cropped back to the input size."""

    def __init__(self, net, multiple: int):
        super().__init__()
        self.net = net
        self.multiple = multiple

    def forward(self, x):
        h, w = x.shape[-2], x.shape[-1]
        return self.net(reflect_pad_to_multiple(x, self.multiple))[:, :, :h, :w]


def exportable(net, multiple):
    """``net`` in eval mode, wrapped in :class:`PadToMultiple` when it needs a multiple above 1."""
    net = net.eval()
    return PadToMultiple(net, multiple).eval() if multiple > 1 else net
