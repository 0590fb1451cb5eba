"""Numerical check of an export: the exported file against the eager network on a seeded random
input whose size differs from the export example, so a size baked into the graph shows up."""
import torch

from gimsanet_arch.export.padding import exportable


class ExportCheckError(RuntimeError):
    """An exported file that does not run, or disagrees with the eager network, at the check size."""


def check_input(in_channels, size_hw, example_hw, seed=0):
    """A (1, C, H, W) uniform [0, 1) input; the size must not be square nor the example's size."""
    h, w = size_hw
    if h == w or tuple(size_hw) == tuple(example_hw):
        raise ValueError(f'check size {h}x{w} must be non-square and differ from the export size '
                         f'{example_hw[0]}x{example_hw[1]}')
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, in_channels, h, w, generator=generator)


def eager_reference(net, x, multiple=1):
    """The eager output on ``x``, with the network padded as the export pads it."""
    with torch.no_grad():
        try:
            return exportable(net, multiple)(x)
        except Exception as err:  # noqa: BLE001  (a size the network cannot take: one line)
            raise ExportCheckError(f'the eager {type(net).__name__} (pad multiple {multiple}) fails on a '
                                   f'{_shape(x)} input: {first_line(err)}') from None


def max_abs_diff(run_exported, expected, x, label='export'):
    """Largest |exported(x) - expected|; :class:`ExportCheckError` when the exported model fails to
    run on ``x`` or gives another shape."""
    with torch.no_grad():
        try:
            got = run_exported(x)
        except Exception as err:  # noqa: BLE001  (onnxruntime/TorchScript errors, reported in one line)
            raise ExportCheckError(f'{label} fails on a {_shape(x)} input: {first_line(err)}') from None
    if tuple(got.shape) != tuple(expected.shape):
        raise ExportCheckError(f'{label} gives shape {_shape(got)} on a {_shape(x)} input, eager gives '
                               f'{_shape(expected)}')
    return (got.float() - expected.float()).abs().max().item()


def require_within(diff, tol, label, x):
    """Raise :class:`ExportCheckError` unless ``diff <= tol`` (NaN fails)."""
    if not diff <= tol:
        raise ExportCheckError(f'{label}: max abs diff {diff:.3g} vs eager on a {_shape(x)} input exceeds '
                               f'the tolerance {tol:g}')


def first_line(err):
    """The first line of an exception's message (exporter and runtime errors run to pages)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _shape(t):
    return 'x'.join(str(s) for s in t.shape)
