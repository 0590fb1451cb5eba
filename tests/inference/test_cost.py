"""Parameter and MAC counts (the one MAC counter of the package), and the timing helper."""
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.inference import cost


@pytest.mark.parametrize('c,learned,fixed', [(3, 1_280_700, 1_280_754), (1, 1_278_918, 1_278_936)])
def test_gimsanet_macs_per_pixel(c, learned, fixed):
    model = GIMSANet(in_channels=c).eval()
    assert cost.macs_per_pixel(model, c, size=8, exclude=model.grad_map) == learned
    assert cost.macs_per_pixel(model, c, size=8) == fixed


def test_conv_macs_and_params():
    net = torch.nn.Conv2d(3, 5, 3, padding=1)
    assert cost.count_params(net) == 3 * 5 * 9 + 5
    assert cost.macs_per_pixel(net, 3, size=16) == 3 * 5 * 9


def test_ms_per_megapixel_is_positive_and_pads_to_the_multiple():
    seen = []

    def net(x):
        seen.append(tuple(x.shape[-2:]))
        return x

    assert cost.ms_per_megapixel(net, 1, size=10, runs=2, multiple=8) > 0
    assert set(seen) == {(16, 16)}
