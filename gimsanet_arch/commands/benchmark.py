"""Benchmark denoisers: size, speed, memory and (with test images) PSNR/SSIM.

    gimsanet-benchmark --threads 2 --tile 128 --out results/benchmark
    gimsanet-benchmark --opt options/test/Restormer/test_Restormer_GaussianColorDenoising_CBSD68.yml \\
        --model mine=my_arch.yml:experiments/mine/models/net_g_latest.pth \\
        --data datasets/CBSD68/test --sigmas 15 25 50
    gimsanet-benchmark --quick            # tiny widths and sizes: checks the plumbing in seconds

(also ``python -m gimsanet_arch.commands.benchmark``). Without ``--opt``/``--model`` it runs the
default list (GIMSANet colour and gray, Restormer, NAFNet-w32, NAFNet-w64, SwinIR, RIDNet at their
official widths, random weights; ``--default-models`` adds it to given models). For each model:
parameters, MACs per pixel, and for each image size latency, megapixels per second and peak memory
in fp32/bf16, contiguous/channels_last and whole-image/tiled (``--grid axes``: one change from the
fp32 contiguous whole-image baseline at a time; ``--grid full``: every combination). Each latency is
the median of ``--runs`` timed forwards after ``--warmup`` untimed ones. ``--data`` adds PSNR/SSIM
per sigma with the protocol of the compare command (docs/evaluation.md). Writes
``<out>/benchmark.csv``, ``<out>/quality.csv`` (with ``--data``), ``<out>/benchmark.md`` and PNG
charts (latency vs image size; with ``--data`` PSNR vs sigma and PSNR vs MACs; the ``plots`` extra).
"""
import argparse
import os
import os.path as osp
import sys

from gimsanet_arch.options import OptionError

SPEED_KEYS = ['model', 'arch', 'params', 'macs_per_pixel', 'size', 'dtype', 'layout', 'tile', 'tiles', 'latency_ms',
              'mp_per_s', 'peak_mem_mb', 'mem_source', 'runs', 'device', 'note']
QUALITY_KEYS = ['model', 'data', 'sigma', 'psnr', 'ssim', 'images', 'params', 'macs_per_pixel', 'weights']
MODEL_COLUMNS = [('model', 'Model', '{}'), ('arch', 'Arch', '{}'), ('in_ch', 'In ch', '{}'),
                 ('params', 'Params', '{:,}'), ('macs_per_pixel', 'MACs/px', '{:,.0f}'), ('weights', 'Weights', '{}')]
SPEED_COLUMNS = [('model', 'Model', '{}'), ('size', 'Size', '{}'), ('dtype', 'DType', '{}'), ('layout', 'Layout', '{}'),
                 ('tile', 'Tile', '{}'), ('tiles', 'Tiles', '{}'), ('latency_ms', 'ms', '{:,.1f}'),
                 ('mp_per_s', 'MP/s', '{:.3f}'), ('peak_mem_mb', 'Peak MB', '{:,.1f}'), ('runs', 'Runs', '{}'),
                 ('note', 'Note', '{}')]
QUALITY_COLUMNS = [('model', 'Model', '{}'), ('data', 'Data', '{}'), ('sigma', 'Sigma', '{:g}'),
                   ('psnr', 'PSNR', '{:.2f}'), ('ssim', 'SSIM', '{:.4f}'), ('macs_per_pixel', 'MACs/px', '{:,.0f}'),
                   ('weights', 'Weights', '{}')]
DEFAULTS = dict(sizes=[128, 256, 512], runs=3, warmup=1)
QUICK = dict(sizes=[32, 64], runs=1, warmup=1)  # with --tiny: the plumbing in seconds


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='gimsanet-benchmark', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    models = p.add_argument_group('models')
    models.add_argument('--trust-checkpoint', action='store_true',
                        help='allow checkpoints that need full pickle (they can run code): only files you trust')
    models.add_argument('--model', action='append', default=[], metavar='NAME=YML[:CKPT]',
                        help='a yml with network_g (or the network dict) and an optional checkpoint (repeatable)')
    models.add_argument('--opt', action='append', default=[], metavar='FILE', help='BasicSR option file (repeatable)')
    models.add_argument('--default-models', action='store_true', help='run the default list too')
    models.add_argument('--tiny', action='store_true', help="every model at its arch's tiny width, random weights")
    models.add_argument('--quick', action='store_true', help='--tiny, sizes 32 64, one run: a plumbing check')
    speed = p.add_argument_group('speed and memory')
    speed.add_argument('--sizes', nargs='+', type=int, help='square image sides (default 128 256 512)')
    speed.add_argument('--dtypes', nargs='+', choices=['fp32', 'bf16'], default=['fp32', 'bf16'])
    speed.add_argument('--channels-last', nargs='+', choices=['off', 'on'], default=['off', 'on'])
    speed.add_argument('--tile', type=int, help='also run tiled with this tile side (images larger than it)')
    speed.add_argument('--tile-overlap', type=int, default=32)
    speed.add_argument('--variant-sizes', nargs='+', type=int,
                       help='sizes that get the other dtypes, layouts and tiles (default: every size)')
    speed.add_argument('--grid', choices=['axes', 'full'], default='axes',
                       help='axes: one change from the baseline at a time; full: every combination')
    speed.add_argument('--runs', type=int, help='timed forwards per case, median reported (default 3)')
    speed.add_argument('--warmup', type=int, help='untimed forwards first; the first measures memory (default 1)')
    speed.add_argument('--case-seconds', type=float,
                       help='fewer timed runs (at least 1) for cases whose warm-up shows they would take longer')
    speed.add_argument('--mac-size', type=int, default=64, help='image side for the MAC count')
    speed.add_argument('--max-gmac', type=float, help='list, but do not run, forwards above this many GMACs')
    speed.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    speed.add_argument('--threads', type=int, help='torch CPU threads (default: torch default)')
    quality = p.add_argument_group('quality (needs test images)')
    quality.add_argument('--data', nargs='+', help='folder(s) of clean test images')
    quality.add_argument('--sigmas', nargs='+', type=float, default=[15, 25, 50])
    p.add_argument('--out', default='results/benchmark', help='folder for the CSV, Markdown and PNG files')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    for key in DEFAULTS:  # given values win over --quick's
        if getattr(args, key) is None:
            setattr(args, key, (QUICK if args.quick else DEFAULTS)[key])
    args.tiny = args.tiny or args.quick
    if min(args.sizes) < 1 or args.runs < 1 or args.warmup < 1:
        p.error('--sizes, --runs and --warmup must be at least 1')
    if args.tile is not None and not 0 <= args.tile_overlap < args.tile:
        p.error(f'--tile-overlap ({args.tile_overlap}) must be at least 0 and smaller than --tile ({args.tile})')
    return args


def model_specs(args):
    """The models to run, every one checked before any is built (a bad argument fails at once)."""
    from gimsanet_arch.inference import benchmark, network
    specs = network.collect_specs(args.opt, args.model, trust=args.trust_checkpoint)
    if not specs or args.default_models:
        specs = benchmark.default_specs() + specs
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f'model names must differ: {names}')
    return [benchmark.tiny_spec(s) for s in specs] if args.tiny else specs


def variant(row):
    """How a speed row differs from a plain run: dtype, layout, tiling."""
    return ' '.join([row['dtype']] + (['channels_last'] if row['layout'] == 'channels_last' else [])
                    + ([f'tile {row["tile"]}'] if row['tile'] else []))


def summary(speed_rows):
    """One row per (model, size): latency of every variant, and MP/s and peak memory of the first
    (baseline) variant and of the first tiled one. Returns ``(rows, columns)`` for format_table."""
    variants = list(dict.fromkeys(variant(r) for r in speed_rows))
    tiled = next((v for v in variants if 'tile' in v), None)
    rows = {}
    for r in speed_rows:
        row = rows.setdefault((r['model'], r['size']), dict(model=r['model'], size=r['size']))
        row['ms ' + variant(r)] = r['latency_ms']
        if variant(r) == variants[0]:
            row['mp_per_s'], row['peak_mem_mb'] = r['mp_per_s'], r['peak_mem_mb']
        if variant(r) == tiled:
            row['peak_tiled'] = r['peak_mem_mb']
    columns = [('model', 'Model', '{}'), ('size', 'Size', '{}')]
    columns += [('ms ' + v, f'ms {v}', '{:,.1f}') for v in variants]
    columns += [('mp_per_s', f'MP/s {variants[0]}', '{:.3f}'), ('peak_mem_mb', f'Peak MB {variants[0]}', '{:,.1f}')]
    columns += [('peak_tiled', f'Peak MB {tiled}', '{:,.1f}')] if tiled else []
    return list(rows.values()), columns


def write_charts(out, speed_rows, quality_rows):
    """The PNG charts; returns the paths written (empty without matplotlib)."""
    from gimsanet_arch.commands import report
    written = []
    series = {}
    for r in speed_rows:
        if r['layout'] == 'contiguous' and not r['tile']:
            s = series.setdefault((r['model'], r['dtype']), dict(label=f'{r["model"]} {r["dtype"]}', group=r['model'],
                                                                 dashed=r['dtype'] != 'fp32', points=[]))
            s['points'].append((r['size'], r['latency_ms']))
    written.append(report.write_xy_chart(list(series.values()), osp.join(out, 'latency_vs_size.png'),
                                         'image side (pixels, square image)', 'latency (ms, median)',
                                         log_x=True, log_y=True, title='Whole-image latency, batch 1'))
    if quality_rows:
        by_model, by_sigma = {}, {}
        for r in quality_rows:
            label = f'{r["model"]} ({r["data"]})'
            by_model.setdefault(label, dict(label=label, points=[]))['points'].append((r['sigma'], r['psnr']))
            by_sigma.setdefault((r['data'], r['sigma']), dict(label=f'{r["data"]} sigma {r["sigma"]:g}', points=[]))[
                'points'].append((r['macs_per_pixel'], r['psnr'], r['model']))
        written.append(report.write_xy_chart(list(by_model.values()), osp.join(out, 'psnr_vs_sigma.png'),
                                             'noise sigma', 'PSNR (dB)'))
        written.append(report.write_xy_chart(list(by_sigma.values()), osp.join(out, 'psnr_vs_macs.png'),
                                             'MACs per pixel', 'PSNR (dB)', log_x=True, lines=False))
    return [w for w in written if w]


def runs_text(args):
    if args.case_seconds is None:
        return f'{args.runs} timed forward(s)'
    return (f'up to {args.runs} timed forwards (fewer, at least one, where the warm-up showed they would take '
            f'more than {args.case_seconds:g} s: column Runs)')


def markdown(label, args, models, speed_rows, quality_rows):
    from gimsanet_arch.commands import report
    summary_rows, summary_columns = summary(speed_rows)
    sources = ', '.join(sorted({r['mem_source'] for r in speed_rows if r['mem_source']})) or '-'
    parts = [f'# Benchmark\n\nMachine: {label}.\n',
             f'Latency: median of {runs_text(args)} after {args.warmup} warm-up(s), batch 1, through the inference '
             'engine (padding included). Peak memory: measured during the first warm-up, on top of the input and '
             f'the weights ({sources}). Tiled runs keep the image in host memory and move one tile at a time.\n',
             '## Models\n', report.format_table(models, MODEL_COLUMNS) + '\n',
             '## Latency (ms) per image size\n', report.format_table(summary_rows, summary_columns) + '\n',
             '## All measurements\n', report.format_table(speed_rows, SPEED_COLUMNS) + '\n']
    if quality_rows:
        parts += ['## Quality (PSNR/SSIM, standard AWGN protocol of docs/evaluation.md)\n',
                  report.format_table(quality_rows, QUALITY_COLUMNS) + '\n']
    return '\n'.join(parts)


def main(argv=None):
    args = parse_args(argv)
    from tqdm import tqdm

    from gimsanet_arch.commands import report
    from gimsanet_arch.inference import benchmark
    try:
        specs = model_specs(args)
        cases = benchmark.make_cases(args.sizes, args.dtypes, [c == 'on' for c in args.channels_last], args.tile,
                                     args.grid, args.variant_sizes)
        device, label = benchmark.prepare_machine(args.device, args.threads)
    except (ValueError, OptionError) as err:
        print(f'gimsanet-benchmark: error: {err}', file=sys.stderr)
        return 2
    print(f'{len(specs)} model(s) x {len(cases)} case(s) on {label}')
    with tqdm(total=len(specs) * len(cases), unit='case', desc='benchmark', disable=args.no_progress) as bar:
        settings = benchmark.Settings(args.runs, args.warmup, args.tile_overlap, args.mac_size, args.max_gmac,
                                      args.case_seconds)
        models, speed_rows, quality_rows = benchmark.run(specs, cases, device, settings, data=args.data,
                                                         sigmas=args.sigmas, progress=bar)
    os.makedirs(args.out, exist_ok=True)
    text = markdown(label, args, models, speed_rows, quality_rows)
    with open(osp.join(args.out, 'benchmark.md'), 'w') as f:
        f.write(text)
    written = [report.write_csv(speed_rows, osp.join(args.out, 'benchmark.csv'), SPEED_KEYS),
               osp.join(args.out, 'benchmark.md')]
    if quality_rows:
        written.append(report.write_csv(quality_rows, osp.join(args.out, 'quality.csv'), QUALITY_KEYS))
    charts = write_charts(args.out, speed_rows, quality_rows)
    print(text)
    if report.pyplot() is None:
        print('note: matplotlib is not installed, so no PNG charts (pip install "gimsanet_arch[plots]")')
    if quality_rows and any(m['weights'] == 'random' for m in models):
        print('note: models with random weights have meaningless PSNR/SSIM (give checkpoints for real scores)')
    errors = [r for r in speed_rows if r['note'].startswith('error')]
    for r in errors:
        print(f'warning: {r["model"]} {variant(r)} at {r["size"]}: {r["note"]}', file=sys.stderr)
    print('wrote ' + ', '.join(written + charts))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
