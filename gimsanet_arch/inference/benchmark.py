"""Speed, memory and (optionally) quality of denoisers on one machine.

For every model: parameters and MACs per pixel once; then, for every :class:`Case` (image size,
fp32/bf16, channels_last or not, whole image or tiled), one warm-up forward whose peak memory is
measured (:func:`gimsanet_arch.inference.measure.peak_bytes`) and the median latency of ``runs``
timed forwards (:func:`~gimsanet_arch.inference.measure.median_seconds`). Every forward is
:func:`gimsanet_arch.inference.engine.run`, the same call validation, the comparison and the
denoise command use. With test folders it also scores each model with
:func:`gimsanet_arch.inference.evaluate.score` (the standard AWGN protocol of the comparison).
"""
import datetime
import gc
import itertools
import platform
import time
from dataclasses import dataclass
from typing import Optional

import torch

from gimsanet_arch.archs.arch_info import arch_info
from gimsanet_arch.inference import cost, engine, evaluate, measure, network

# The default models at their official/paper widths: (name, the options/test file whose network_g
# this is (tests/commands/test_benchmark.py keeps them equal), network_g). Written out here because
# an installed package has no options/ folder.
_RESTORMER = {'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 48, 'num_blocks': [4, 6, 6, 8],
              'num_refinement_blocks': 4, 'heads': [1, 2, 4, 8], 'ffn_expansion_factor': 2.66, 'bias': False,
              'LayerNorm_type': 'BiasFree', 'dual_pixel_task': False}
_NAFNET = {'type': 'NAFNet', 'img_channel': 3, 'enc_blk_nums': [2, 2, 4, 8], 'middle_blk_num': 12,
           'dec_blk_nums': [2, 2, 2, 2]}
DEFAULT_MODELS = (
    ('GIMSANet', 'GIMSANet/test_GIMSANet_GaussianColorDenoising_CBSD68.yml',
     {'type': 'GIMSANet', 'in_channels': 3, 'grad_mode': 'official'}),
    ('GIMSANet-gray', 'GIMSANet/test_GIMSANet_GaussianGrayDenoising_BSD68.yml',
     {'type': 'GIMSANet', 'in_channels': 1, 'grad_mode': 'official'}),
    ('Restormer', 'Restormer/test_Restormer_GaussianColorDenoising_CBSD68.yml', _RESTORMER),
    ('NAFNet-w32', 'NAFNet/test_NAFNet-width32_GaussianColorDenoising_CBSD68.yml', dict(_NAFNET, width=32)),
    ('NAFNet-w64', 'NAFNet/test_NAFNet-width64_GaussianColorDenoising_CBSD68.yml', dict(_NAFNET, width=64)),
    ('SwinIR', 'SwinIR/test_SwinIR_GaussianColorDenoising_s50_CBSD68.yml',
     {'type': 'SwinIR', 'upscale': 1, 'in_chans': 3, 'img_size': 128, 'window_size': 8, 'img_range': 1.,
      'depths': [6] * 6, 'embed_dim': 180, 'num_heads': [6] * 6, 'mlp_ratio': 2, 'upsampler': '',
      'resi_connection': '1conv'}),
    ('RIDNet', 'RIDNet/test_RIDNet_GaussianColorDenoising_CBSD68.yml',
     {'type': 'RIDNet', 'in_channels': 3, 'mid_channels': 64, 'out_channels': 3, 'num_block': 4,
      'img_range': 255.}),
)
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}


def default_specs():
    """:class:`~gimsanet_arch.inference.network.ModelSpec` of every default model (random weights)."""
    return [network.ModelSpec(name, opt) for name, _, opt in DEFAULT_MODELS]


def tiny_spec(spec):
    """``spec`` at its architecture's tiny width (``arch_info(...).tiny_config``), random weights:
    the same code paths in a fraction of the time, for tests and ``--quick``."""
    info = arch_info(spec.network_opt['type'])
    if not info.tiny_config:
        raise ValueError(f'{spec.name}: {info.name} has no tiny configuration (arch_info tiny_config)')
    return network.ModelSpec(spec.name, dict(spec.network_opt, **info.tiny_config), None,
                             pad_multiple=spec.pad_multiple)


@dataclass(frozen=True)
class Case:
    """One measured configuration of a model."""
    size: int  # the image is size x size pixels
    dtype: str = 'fp32'  # a key of DTYPES
    channels_last: bool = False
    tile: Optional[int] = None  # tile side; None: the whole image in one forward

    @property
    def layout(self):
        return 'channels_last' if self.channels_last else 'contiguous'


def make_cases(sizes, dtypes=('fp32',), layouts=(False,), tile=None, grid='axes', variant_sizes=None):
    """The cases to measure at each size. ``grid='full'``: every combination of dtype, layout and
    whole/tiled. ``grid='axes'``: a baseline (the first dtype and layout, whole image) plus one case
    per other value of each axis, the rest kept at the baseline, so each effect is seen at a
    fraction of the cost. Tiled cases only where the tile is smaller than the image.
    ``variant_sizes``: the sizes that get more than the baseline (default: all)."""
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f'unknown dtype {dtype!r}: expected one of {", ".join(DTYPES)}')
    cases = []
    for size in sizes:
        tiles = [None] + ([tile] if tile and tile < size else [])
        if variant_sizes is not None and size not in variant_sizes:
            combos = [(dtypes[0], layouts[0], None)]
        elif grid == 'full':
            combos = itertools.product(dtypes, layouts, tiles)
        elif grid == 'axes':
            base = (dtypes[0], layouts[0], None)
            combos = [base] + [(d, base[1], None) for d in dtypes[1:]] + [(base[0], cl, None) for cl in layouts[1:]]
            combos += [(base[0], base[1], t) for t in tiles[1:]]
        else:
            raise ValueError(f'unknown grid {grid!r}: expected axes or full')
        cases += [Case(size, d, cl, t) for d, cl, t in dict.fromkeys(combos)]
    return cases


def machine_label(device, threads=None):
    """Where the numbers come from: processor (or GPU), threads, torch version and date."""
    device = torch.device(device)
    if device.type == 'cuda':
        what = torch.cuda.get_device_name(device)
    else:
        what = cpu_model_name()
        what += f', {threads or torch.get_num_threads()} threads'
        what += ', native bf16' if engine.bf16_supported(device) else ', no native bf16 (emulated: expect it slower)'
    return f'{what}; torch {torch.__version__}; {datetime.date.today().isoformat()}'


def prepare_machine(device_name, threads=None):
    """``(device, label)``: the resolved device (ValueError where it is not available, see
    :func:`~gimsanet_arch.inference.measure.resolve_device`), torch's CPU threads set to
    ``threads`` when given, and :func:`machine_label`."""
    device = measure.resolve_device(device_name)
    if threads:
        torch.set_num_threads(threads)
    return device, machine_label(device, threads)


def cpu_model_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


@dataclass(frozen=True)
class Settings:
    """How each case is measured."""
    runs: int = 3  # timed forwards; the median is reported
    warmup: int = 1  # untimed forwards first; the first one measures peak memory
    overlap: int = 32  # tile overlap (pixels)
    mac_size: int = 64  # image side of the MAC count
    max_gmac: Optional[float] = None  # cases above this many GMAC per forward are listed, not run
    case_seconds: Optional[float] = None  # fewer timed runs (at least 1) when the warm-up shows they need longer


@torch.no_grad()
def measure_case(net, in_ch, multiple, case, device, runs=3, warmup=1, overlap=32, case_seconds=None):
    """Latency, megapixels per second and peak memory of ``net`` on one random image of ``case``.

    The first warm-up forward is the one whose peak memory is measured; the median of ``runs``
    timed forwards after all warm-ups is the latency (with ``case_seconds``: only as many runs,
    at least one, as fit in that time at the first warm-up's pace). Whole-image cases keep the
    image on ``device``; tiled ones keep it in host memory and move one tile at a time (as the
    denoise command does), so their peak is bounded by the tile."""
    torch.manual_seed(0)
    tiled = bool(case.tile) and engine.tile_count(case.size, case.size, case.tile, overlap) > 1
    x = torch.rand(1, in_ch, case.size, case.size, device='cpu' if tiled else device)
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = DTYPES[case.dtype]

    def call():
        return engine.run(net, x, multiple, tile=case.tile, overlap=overlap, dtype=dtype,
                          channels_last=case.channels_last, device=device)

    start = time.perf_counter()
    peak, source = measure.peak_bytes(call, device)
    if case_seconds is not None:
        runs = max(1, min(runs, int(case_seconds / (time.perf_counter() - start))))
    seconds, _ = measure.median_seconds(call, device, runs=runs, warmup=max(warmup - 1, 0))
    return dict(tiles=engine.tile_count(case.size, case.size, case.tile, overlap), latency_ms=seconds * 1000.,
                mp_per_s=case.size * case.size / 1e6 / seconds, peak_mem_mb=peak / 2 ** 20, mem_source=source,
                runs=runs)


def _note(case, device, gmac, max_gmac):
    if max_gmac is not None and gmac > max_gmac:
        return f'skipped: {gmac:,.0f} GMAC per forward > --max-gmac {max_gmac:g}'
    if case.dtype == 'bf16' and not engine.bf16_supported(device):
        return 'bf16 emulated (no native bf16 here)'
    return ''


def benchmark_model(spec, cases, device='cpu', settings=Settings(), on_case=None):
    """Build ``spec`` and measure it in every case (see :class:`Settings`). Returns
    ``(model row, case rows, (net, multiple))``. ``on_case(case)``: called after each case."""
    net, multiple = network.build(spec, device)
    in_ch = spec.in_ch
    model = dict(model=spec.name, arch=spec.network_opt['type'], in_ch=in_ch, params=cost.count_params(net),
                 macs_per_pixel=cost.macs_per_pixel(net, in_ch, settings.mac_size, multiple, device),
                 weights=spec.checkpoint or 'random')
    rows = []
    for case in cases:
        padded = -(-case.size // multiple) * multiple
        gmac = model['macs_per_pixel'] * padded * padded / 1e9
        row = dict(model=spec.name, arch=model['arch'], params=model['params'],
                   macs_per_pixel=model['macs_per_pixel'], size=case.size, dtype=case.dtype, layout=case.layout,
                   tile=case.tile or '', tiles='', latency_ms=None, mp_per_s=None, peak_mem_mb=None,
                   mem_source='', runs='', device=str(device), note=_note(case, device, gmac, settings.max_gmac))
        if not row['note'].startswith('skipped'):
            engine.prepare_network(net, channels_last=case.channels_last)  # weights and input in the case's layout
            try:
                row.update(measure_case(net, in_ch, multiple, case, device, settings.runs, settings.warmup,
                                        settings.overlap, settings.case_seconds))
            except (RuntimeError, NotImplementedError) as err:  # e.g. an op without a bf16 kernel
                row['note'] = f'error: {str(err).splitlines()[0][:120]}'
        rows.append(row)
        if on_case is not None:
            on_case(case)
    return model, rows, (net, multiple)


def run(specs, cases, device='cpu', settings=Settings(), data=None, sigmas=(15, 25, 50), progress=None):
    """Benchmark every model, one at a time (only one network in memory), and score it on the
    ``data`` folders at ``sigmas`` when given. Returns ``(models, speed, quality)`` row lists.
    ``progress``: an object with ``update(n)`` and ``set_postfix_str(text)`` (a tqdm bar)."""
    models, speed, quality = [], [], []
    for spec in specs:
        if progress is not None:
            progress.set_postfix_str(spec.name)
        model, rows, (net, multiple) = benchmark_model(
            spec, cases, device, settings, on_case=(lambda case: progress.update(1)) if progress is not None else None)
        models.append(model)
        speed += rows
        if data:
            if progress is not None:
                progress.set_postfix_str(f'{spec.name}: scoring')
            scores, _ = evaluate.score({spec.name: (net, multiple)}, spec.in_ch, data, sigmas, device,
                                       progress=progress is not None)
            quality += [dict(row, params=model['params'], macs_per_pixel=model['macs_per_pixel'],
                             weights=model['weights']) for row in scores]
        del net
        gc.collect()
    return models, speed, quality
