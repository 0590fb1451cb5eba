"""GIMSANet's inference variants, built here one by one so that each is exactly what its name says,
timed on the same image and scored on the same photos.

- ``NCHW fp32``: the plain path, the reference of every output comparison;
- ``channels_last fp32``: weights and input in channels_last (oneDNN's blocked convs without reorders);
- ``channels_last bf16 autocast``: the same under bf16 autocast (fp32 weights, cast per call);
- ``channels_last bf16 weights``: a bf16 copy of the weights, a bf16 input, the output cast back;
- ``compiled ...`` (``use_compile=True``): ``torch.compile`` of the two channels_last networks;
- ``default path``: ``engine.run(net, x)`` with its defaults, what the denoise command, the validation
  loop and the benchmark use (with ``engine.prepare_network`` first where the engine has it).

The targets are computed from the fastest fp32 and bf16 variants besides the plain one
(rows ``fastest fp32`` / ``fastest bf16``, whose note names the variant).
"""
import copy
from dataclasses import dataclass
from typing import Callable

import torch

from gimsanet_arch.inference import engine, measure
from benchmarks.perf import photos as photo_data
from benchmarks.perf import roofline
from benchmarks.perf.results import Target, error_row, find, row, timing_rows, value

SECTION = 'gimsanet'
QUALITY_SECTION = 'gimsanet quality'
REFERENCE = 'NCHW fp32'
FASTEST = {'fp32': 'fastest fp32', 'bf16': 'fastest bf16'}
TARGETS = (
    Target('GIMSANet fp32 / channels_last fp32 conv rate', (SECTION, FASTEST['fp32'], 'GMAC/s'),
           (roofline.SECTION, roofline.conv_name('fp32'), 'GMAC/s'), '>=', 0.85),
    Target('GIMSANet bf16 / GIMSANet fp32', (SECTION, FASTEST['bf16'], 'GMAC/s'), (SECTION, FASTEST['fp32'], 'GMAC/s'),
           '>=', 3.5),
    Target('GIMSANet bf16 / channels_last bf16 conv rate', (SECTION, FASTEST['bf16'], 'GMAC/s'),
           (roofline.SECTION, roofline.conv_name('bf16'), 'GMAC/s'), '>=', 0.66),
    Target('GIMSANet bf16 PSNR change (photos, sigma 25)', (QUALITY_SECTION, FASTEST['bf16'], 'PSNR change'), None,
           '<=', 0.05, 'dB'),
)


@dataclass
class Variant:
    name: str
    dtype: str  # 'fp32', 'bf16', or '' where the engine decides and does not say
    forward: Callable  # NCHW float32 tensor -> float32 output


def _channels_last(x):
    return x.contiguous(memory_format=torch.channels_last)


def explicit_variants(net, multiple=1, use_compile=False):
    """The variants built by hand (see the module docstring); ``net`` is left as it is."""
    cl_net = copy.deepcopy(net).to(memory_format=torch.channels_last).eval()
    bf16_net = copy.deepcopy(cl_net).to(torch.bfloat16)

    def plain(x):
        return engine.forward_padded(net, x, multiple)

    def channels_last(x, model=cl_net):
        return engine.forward_padded(model, _channels_last(x), multiple)

    def autocast(x, model=cl_net):
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            return engine.forward_padded(model, _channels_last(x), multiple).float()

    def bf16_weights(x, model=bf16_net):
        return engine.forward_padded(model, _channels_last(x).to(torch.bfloat16), multiple).float()

    variants = [Variant(REFERENCE, 'fp32', plain), Variant('channels_last fp32', 'fp32', channels_last),
                Variant('channels_last bf16 autocast', 'bf16', autocast),
                Variant('channels_last bf16 weights', 'bf16', bf16_weights)]
    if use_compile:
        compiled_cl, compiled_bf16 = torch.compile(cl_net), torch.compile(bf16_net)
        variants += [Variant('compiled channels_last fp32', 'fp32', lambda x: channels_last(x, compiled_cl)),
                     Variant('compiled channels_last bf16 weights', 'bf16', lambda x: bf16_weights(x, compiled_bf16))]
    return variants


def default_dtype(device):
    """The dtype ``engine.run`` picks by default, as ``'fp32'``/``'bf16'`` ('' if the engine does not say).
    Engines without ``resolve_dtype`` run in the input's dtype (fp32)."""
    resolve = getattr(engine, 'resolve_dtype', None)
    if resolve is None:
        return 'fp32'
    try:
        dtype = resolve('auto', device)
    except (TypeError, ValueError):
        return ''
    return {torch.bfloat16: 'bf16', torch.float32: 'fp32', None: 'fp32'}.get(dtype, str(dtype))


def prepared(net):
    """A copy of ``net`` prepared by ``engine.prepare_network`` where the engine has one (the fast
    path: channels_last weights and friends), else ``net`` itself."""
    prepare = getattr(engine, 'prepare_network', None)
    if prepare is None:
        return net
    copied = copy.deepcopy(net)
    return prepare(copied) or copied


def default_path(net, multiple=1, device='cpu'):
    """``engine.run`` with its defaults on :func:`prepared` ``net``."""
    net = prepared(net)
    return Variant('default path', default_dtype(device), lambda x: engine.run(net, x, multiple))


def measure_variants(variants, x, macs, runs=3, warmup=1):
    """ms, GMAC/s and MP/s of every variant on ``x``, then the fastest fp32 and bf16 ones besides
    the plain reference (rows :data:`FASTEST`)."""
    rows = []
    pixels = x.shape[-2] * x.shape[-1]
    for variant in variants:
        try:
            with torch.no_grad():
                seconds, _ = measure.median_seconds(lambda: variant.forward(x), x.device, runs=runs, warmup=warmup)
            rows += timing_rows(SECTION, variant.name, seconds, macs=macs, pixels=pixels, note=variant.dtype)
        except (RuntimeError, NotImplementedError) as err:  # e.g. torch.compile without a C++ compiler
            rows.append(error_row(SECTION, variant.name, err))
    for dtype, name in FASTEST.items():
        rates = [(value(rows, (SECTION, v.name, 'GMAC/s')), v.name) for v in variants
                 if v.dtype == dtype and v.name != REFERENCE]
        rates = [(rate, v) for rate, v in rates if rate is not None]
        if rates:
            rate, fastest = max(rates)
            rows.append(row(SECTION, name, 'GMAC/s', rate, 'GMAC/s', note=fastest))
    return rows


def fastest_variant(rows, dtype):
    """The name of the fastest ``dtype`` variant (None when none was measured)."""
    found = find(rows, (SECTION, FASTEST[dtype], 'GMAC/s'))
    return found['note'] if found else None


def quality_rows(variants, photos, sigma, trained, speed_rows, device='cpu'):
    """Each variant against the plain fp32 one on the noisy photos: mean PSNR against the clean
    photos, the change (trained weights) or the PSNR between the outputs (random weights), and the
    largest absolute difference; plus the row of the fastest bf16 variant the target reads."""
    forwards = {v.name: v.forward for v in variants}
    with torch.no_grad():
        outputs = photo_data.denoise_all(forwards, photos, sigma, device=device)
    note = '' if trained else 'random weights: PSNR against the clean photos means nothing'
    rows = []
    for variant in variants:
        mean = sum(photo_data.psnr(outputs[variant.name][n], photos[n]) for n in photos) / len(photos)
        rows.append(row(QUALITY_SECTION, variant.name, 'PSNR', mean, 'dB', note))
        if variant.name != REFERENCE:
            change, metric, max_abs = photo_data.psnr_change(outputs, photos, REFERENCE, variant.name, trained)
            rows += [row(QUALITY_SECTION, variant.name, metric, change, 'dB', note),
                     row(QUALITY_SECTION, variant.name, 'max abs vs fp32', max_abs)]
    fastest = fastest_variant(speed_rows, 'bf16')
    if fastest is not None and trained:
        change = value(rows, (QUALITY_SECTION, fastest, 'PSNR change'))
        rows.append(row(QUALITY_SECTION, FASTEST['bf16'], 'PSNR change', change, 'dB', note=fastest))
    elif fastest is not None:
        rows.append(row(QUALITY_SECTION, FASTEST['bf16'], 'PSNR change', None, 'dB',
                        note='random weights (give --weights): see PSNR vs reference output'))
    return rows
