"""What a network costs: parameters, multiply-accumulates per pixel, time per megapixel.

Every forward here goes through :func:`gimsanet_arch.inference.engine.run`, the one way the
package runs a network over an image."""
import torch

from gimsanet_arch.inference import engine, measure


def count_params(net):
    """Trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def square_input(in_ch, size, multiple=1, device='cpu'):
    """A random 1 x ``in_ch`` x S x S image, S = ``size`` rounded up to ``multiple``."""
    size = -(-size // multiple) * multiple
    return torch.rand(1, in_ch, size, size, device=device)


@torch.no_grad()
def macs_per_pixel(net, in_ch, size=64, multiple=1, device='cpu', exclude=None):
    """Multiply-accumulates per input pixel from ``torch.utils.flop_counter.FlopCounterMode`` (a MAC
    is half a FLOP; the counter counts matrix products and convolutions, not elementwise ops).
    ``exclude``: a sub-module whose own count is subtracted (e.g. GIMSANet's fixed gradient convs,
    which are not learned)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = square_input(in_ch, size, multiple, device)
    with FlopCounterMode(display=False) as counter:
        engine.run(net, x, multiple)
    flops = counter.get_total_flops()
    if exclude is not None:
        with FlopCounterMode(display=False) as excluded:
            exclude(x)
        flops -= excluded.get_total_flops()
    return flops / 2. / (x.shape[-2] * x.shape[-1])


@torch.no_grad()
def ms_per_megapixel(net, in_ch, size=256, runs=3, multiple=1, device='cpu', dtype=None):
    """Median milliseconds per megapixel of ``runs`` timed forwards (after one warm-up), batch 1, on
    the engine's fast path in ``dtype`` (default ``auto``)."""
    x = square_input(in_ch, size, multiple, device)
    seconds, _ = measure.median_seconds(lambda: engine.run(net, x, multiple, dtype=dtype), x.device, runs=runs,
                                        warmup=1)
    return seconds * 1000. / (x.shape[-2] * x.shape[-1] / 1e6)
