"""Where a forward's time goes, by kind of op, and what separates it from the conv rate.

One forward runs under ``torch.profiler``; the self time of every op (time in the op itself, not
in the ops it calls, so nothing is counted twice) is summed by :func:`category`:

- ``conv``: every convolution kernel (oneDNN's included);
- ``pad``: explicit padding copies (``F.pad``, e.g. the TF "same" padding of even kernels);
- ``cat``: concatenations;
- ``activation``: LeakyReLU, sigmoid and the like;
- ``elementwise``: additions, products, square roots, reductions;
- ``copy``: layout and dtype conversions (``.to``, ``.contiguous``, ``copy_``): what channels_last
  and bf16 cost when they are not carried through;
- ``other``: the rest (allocation, views, the framework's own overhead).

The gap is the profiled time minus the ideal time, i.e. all the network's multiply-adds at the
measured rate of the 3x3 conv (:mod:`benchmarks.perf.roofline`). It is made of the conv time
above that ideal plus the time of every other category; :func:`gap_rows` gives each part's share.
"""
import torch

from gimsanet_arch.inference import measure
from benchmarks.perf.results import row

SECTION = 'profile'
GAP_SECTION = 'profile gap'
CATEGORIES = ('conv', 'pad', 'cat', 'activation', 'elementwise', 'copy', 'other')
ACTIVATIONS = {'leaky_relu', 'relu', 'sigmoid', 'gelu', 'silu', 'tanh', 'softmax', '_softmax', 'hardtanh', 'elu'}
COPIES = {'copy', '_to_copy', 'to', 'contiguous', 'clone', '_copy_from', '_copy_from_and_resize', 'to_dense'}
ELEMENTWISE = {'add', 'mul', 'sub', 'div', 'sqrt', 'rsqrt', 'pow', 'abs', 'neg', 'square', 'exp', 'log', 'clamp',
               'clamp_min', 'clamp_max', 'where', 'mean', 'sum', 'var', 'var_mean', 'addcmul', 'addcdiv', 'lerp',
               'maximum', 'minimum', 'fill', 'zero', 'native_layer_norm', 'layer_norm'}


def category(op_name):
    """The category (:data:`CATEGORIES`) of a profiler op name such as ``aten::leaky_relu_``."""
    base = op_name.split('::')[-1]
    name = base.rstrip('_') or base  # in-place variants (add_) count as their op
    if 'conv' in name:
        return 'conv'
    if 'pad' in name:
        return 'pad'
    if name in ('cat', 'stack'):
        return 'cat'
    if name in ACTIVATIONS:
        return 'activation'
    if name in COPIES:
        return 'copy'
    if name in ELEMENTWISE:
        return 'elementwise'
    return 'other'


def sum_by_category(op_times):
    """``{category: microseconds}`` (every category present) of ``[(op name, self microseconds)]``."""
    totals = dict.fromkeys(CATEGORIES, 0.)
    for name, micros in op_times:
        totals[category(name)] += micros
    return totals


def profile_ops(forward, x):
    """``[(op name, self microseconds)]`` of one ``forward(x)`` after an unprofiled warm-up (device
    time on CUDA, CPU time on CPU)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = x.device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.no_grad():
        forward(x)
        measure.synchronize(x.device)
        prof = profile(activities=activities)
        with measure.quiet_stderr():  # the profiler's C++ library logs every start and stop
            prof.start()
        try:
            forward(x)
            measure.synchronize(x.device)
        finally:
            with measure.quiet_stderr():
                prof.stop()
    attr = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    return [(event.key, float(getattr(event, attr))) for event in prof.key_averages()]


def profile_rows(variant, op_times):
    """ms and share of the profiled time of every category, and the total (columns named by ``variant``)."""
    totals = sum_by_category(op_times)
    total = sum(totals.values())
    rows = []
    for name in CATEGORIES:
        rows += [row(SECTION, name, f'{variant} ms', totals[name] / 1000., 'ms'),
                 row(SECTION, name, f'{variant} share', 100. * totals[name] / total if total else None, '%')]
    rows.append(row(SECTION, 'total', f'{variant} ms', total / 1000., 'ms'))
    return rows


def gap_rows(variant, op_times, macs, conv_gmac_per_s):
    """One line per ``variant``: the conv rate, the profiled and ideal (all ``macs`` at that rate)
    times, the gap between them, and each part's share of the gap: the conv time above the
    ideal, then every other category."""
    totals = {k: v / 1000. for k, v in sum_by_category(op_times).items()}
    total = sum(totals.values())
    ideal = macs / (conv_gmac_per_s * 1e9) * 1000.
    gap = total - ideal
    rows = [row(GAP_SECTION, variant, 'conv rate', conv_gmac_per_s, 'GMAC/s'),
            row(GAP_SECTION, variant, 'profiled', total, 'ms'), row(GAP_SECTION, variant, 'ideal', ideal, 'ms'),
            row(GAP_SECTION, variant, 'gap', gap, 'ms')]
    parts = [('conv above the rate', totals['conv'] - ideal)] + [(k, totals[k]) for k in CATEGORIES[1:]]
    return rows + [row(GAP_SECTION, variant, name, 100. * ms / gap if gap > 0 else None, '% of gap')
                   for name, ms in parts]
