"""The performance report: everything measured in one run, side by side. From the repository root
(it is not part of the installed package)::

    python -m benchmarks.perf --threads 2 --weights net_g.pth --official-root .official --out results/perf
    python -m benchmarks.perf --quick     # tiny widths and sizes, one run: checks the plumbing

Sections (``--sections`` picks some):

- roofline: GMAC/s of a 2048^3 matmul and of GIMSANet's 3x3 conv (49->49), fp32 and bf16;
- gimsanet: GIMSANet's inference variants (NCHW fp32, channels_last fp32, bf16 autocast, bf16
  weights, the engine's default path; ``--compile`` adds compiled ones), GMAC/s, and PSNR on
  skimage photos at sigma 25 (``--weights``; random weights compare outputs instead);
- profile: GIMSANet's forward time by kind of op, and the gap to the conv rate, by part;
- training: a DenoiseModel iteration vs a bare PyTorch loop, bf16 vs fp32 training (loss curves),
  LMDB data loading vs the model's consumption and ``num_worker_per_gpu`` guidance;
- official: Restormer and NAFNet-w32 next to the official code (``--official-root``; skipped
  with a note without it).

The targets are computed from the measured rows and printed first, PASS / FAIL / n/a.
Writes ``<out>/perf.csv`` (one row per number), ``<out>/perf.md``, ``<out>/training_loss.csv`` and,
with matplotlib (the ``plots`` extra), ``<out>/training_loss.png``.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

SECTIONS = ('roofline', 'gimsanet', 'profile', 'training', 'official')
FULL = dict(size=256, matmul_n=2048, conv_size=256, runs=3, warmup=1, train_batch=None, train_patch=None,
            train_iters=50, loader_samples=64, loader_batches=8)
QUICK = dict(size=32, matmul_n=256, conv_size=32, runs=1, warmup=1, train_batch=2, train_patch=16, train_iters=3,
             loader_samples=4, loader_batches=2)
OFFICIAL_MODELS = (('Restormer', 'Restormer'), ('NAFNet-w32', 'NAFNet'))  # (default model name, official source)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='python -m benchmarks.perf', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='tiny widths and sizes, random weights, one run (the plumbing, for tests)')
    p.add_argument('--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS))
    p.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    p.add_argument('--threads', type=int, help='torch CPU threads (default: torch default)')
    p.add_argument('--runs', type=int, help=f'timed runs, the median is reported (default {FULL["runs"]})')
    p.add_argument('--warmup', type=int, help='untimed runs first (default 1)')
    p.add_argument('--size', type=int, help='image side of the model forwards and photo crops (default 256)')
    p.add_argument('--matmul-n', type=int, help='matmul side (default 2048)')
    p.add_argument('--conv-size', type=int, help='image side of the conv rate (default 256)')
    p.add_argument('--compile', action='store_true', help='also time torch.compile variants of GIMSANet')
    p.add_argument('--weights', help='trained colour GIMSANet checkpoint (PSNR change of bf16 on real photos)')
    p.add_argument('--photos', nargs='+', default=None, help='skimage.data photos (default: astronaut coffee '
                   'chelsea rocket)')
    p.add_argument('--sigma', type=float, default=25.)
    p.add_argument('--train-lmdb', default='datasets/demo/train.lmdb',
                   help='training LMDB (scripts/make_demo_data.py); missing: a temporary one from skimage photos')
    p.add_argument('--train-batch', type=int, help='batch (default: the demo option\'s, 8)')
    p.add_argument('--train-patch', type=int, help='patch side (default: the demo option\'s, 48)')
    p.add_argument('--train-iters', type=int, help='iterations of each bf16/fp32 training run (default 50)')
    p.add_argument('--workers', type=int, help='num_worker_per_gpu (default: the demo option\'s, 1)')
    p.add_argument('--official-root', default='.official', help='folder with the official Restormer/ and NAFNet/ code')
    p.add_argument('--official-weights', nargs='+', default=[], metavar='NAME=CKPT',
                   help='official checkpoints, e.g. Restormer=gaussian_color_denoising_blind.pth NAFNet-w32=...')
    p.add_argument('--out', default='results/perf', help='folder for the CSV, Markdown and PNG files')
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for the report's header
    defaults = QUICK if args.quick else FULL
    for key, default in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, default)
    if min(args.size, args.matmul_n, args.conv_size, args.runs, args.warmup, args.train_iters) < 1:
        p.error('sizes, --runs, --warmup and --train-iters must be at least 1')
    if args.weights and not osp.isfile(args.weights):
        p.error(f'--weights: checkpoint not found: {args.weights}')
    try:
        args.official_weights = dict(_name_value(text) for text in args.official_weights)
    except ValueError as err:
        p.error(str(err))
    if args.quick:  # tiny widths: no checkpoint fits
        args.weights, args.official_weights = None, {}
    return args


def _name_value(text):
    name, sep, path = text.partition('=')
    if not sep or name not in dict(OFFICIAL_MODELS):
        raise ValueError(f'--official-weights {text!r}: expected NAME=CKPT with NAME one of '
                         f'{", ".join(dict(OFFICIAL_MODELS))}')
    if not osp.isfile(path):
        raise ValueError(f'--official-weights {text!r}: checkpoint not found: {path}')
    return name, path


def say(text):
    print(f'[perf] {text}', file=sys.stderr, flush=True)


def model_spec(name, args, weights=None):
    """The default model ``name`` of gimsanet-benchmark (tiny with ``--quick``, which drops weights)."""
    from gimsanet_arch.inference import benchmark, network
    spec = next(network.ModelSpec(n, opt, weights) for n, _, opt in benchmark.DEFAULT_MODELS if n == name)
    return benchmark.tiny_spec(spec) if args.quick else spec


def gimsanet_sections(args, device, photos, rows):
    """Sections gimsanet, gimsanet quality and profile (they share the network and its variants)."""
    import torch

    from gimsanet_arch.inference import cost, network
    from benchmarks.perf import inference_paths, op_profile, roofline
    from benchmarks.perf.results import value
    spec = model_spec('GIMSANet', args, args.weights)
    net, multiple = network.build(spec, device)
    macs = cost.macs_per_pixel(net, 3, min(64, args.size), multiple, device) * args.size ** 2
    variants = inference_paths.explicit_variants(net, multiple, args.compile)
    variants.append(inference_paths.default_path(net, multiple, device))
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    out = []
    if 'gimsanet' in args.sections:
        say(f'GIMSANet variants at {args.size}x{args.size} ({macs / 1e9:.3g} GMAC per forward)')
        out += guarded(inference_paths.SECTION,
                       lambda: inference_paths.measure_variants(variants, x, macs, args.runs, args.warmup))
        # a variant that failed (e.g. torch.compile without a compiler) is not run again
        variants = [v for v in variants if value(out, (inference_paths.SECTION, v.name, 'ms')) is not None]
        if photos:
            say(f'GIMSANet outputs on {len(photos)} photos')
            out += guarded(inference_paths.QUALITY_SECTION, lambda: inference_paths.quality_rows(
                variants, photos, args.sigma, bool(spec.checkpoint), out, device))
    if 'profile' in args.sections:
        by_name = {v.name: v for v in variants}
        fastest = inference_paths.fastest_variant(out, 'bf16') or 'channels_last bf16 weights'
        for name, dtype in (('channels_last fp32', 'fp32'), (fastest, 'bf16')):
            if name not in by_name:
                continue
            say(f'profiling {name}')

            def profile(name=name, dtype=dtype):
                op_times = op_profile.profile_ops(by_name[name].forward, x)
                rate = value(rows, (roofline.SECTION, roofline.conv_name(dtype), 'GMAC/s'))
                gap = op_profile.gap_rows(name, op_times, macs, rate) if rate else []
                return op_profile.profile_rows(name, op_times) + gap
            out += guarded(op_profile.SECTION, profile)
    return out


def training_section(args, device, workdir, curves):
    """Rows of the training and data loading sections; the loss curves go into ``curves``."""
    from benchmarks.perf import data_rate, training_step
    network_opt = model_spec('GIMSANet', args).network_opt
    lmdb, note = data_rate.ensure_lmdb(args.train_lmdb, workdir, crop=max(4 * (args.train_patch or 48), 64))
    if note:
        say(note)
    opt = training_step.demo_options(device, network_opt, args.train_batch, args.train_patch, lmdb, args.workers)
    dataset_opt = opt['datasets']['train']
    dataset = data_rate.build_dataset(dataset_opt)
    batches = data_rate.draw_batches(dataset, dataset_opt, args.train_iters)
    say('training: DenoiseModel iteration vs bare loop')
    rows = guarded(training_step.SECTION, lambda: training_step.overhead_rows(
        opt, batches[0], device, runs=max(args.runs, 5), warmup=args.warmup))
    say('training: data loading')
    rows += guarded(data_rate.SECTION, lambda: data_rate.rate_rows(
        dataset, dataset_opt, rows, args.loader_samples, args.loader_batches, note))
    say(f'training: fp32 and bf16, {args.train_iters} iterations each')

    def precision():
        found, curves['losses'] = training_step.precision_runs(opt, batches, device)
        return found
    return rows + guarded(training_step.SECTION, precision)


def official_section(args, device, photos):
    from benchmarks.perf import official
    rows = []
    for name, arch in OFFICIAL_MODELS:
        weights = args.official_weights.get(name)
        say(f'{name} vs the official code')
        rows += official.compare(name, model_spec(name, args).network_opt, arch, args.official_root, device,
                                 args.size, args.runs, args.warmup, photos, args.sigma, weights)
    return rows


def targets(args):
    from benchmarks.perf import data_rate, inference_paths, official, training_step
    chosen = list(inference_paths.TARGETS) if 'gimsanet' in args.sections else []
    chosen += list(training_step.TARGETS + data_rate.TARGETS) if 'training' in args.sections else []
    if 'official' in args.sections:
        chosen += [t for name, _ in OFFICIAL_MODELS for t in official.targets(name)]
    return chosen


def guarded(section, run):
    """``run()``'s rows; a failure becomes one error row of ``section`` so the other sections still run."""
    from benchmarks.perf.results import error_row
    try:
        return run()
    except Exception as err:  # noqa: BLE001  (a long report should not lose every section to one failure)
        say(f'{section} failed: {type(err).__name__}: {err}')
        return [error_row(section, 'section', err)]


def measure_all(args, device, workdir):
    """Every selected section's rows, the targets' rows and the training loss curves."""
    from benchmarks.perf import photos as photo_data
    from benchmarks.perf import results, roofline
    rows, curves = [], {}
    if 'roofline' in args.sections:
        say('roofline: matmul and 3x3 conv rates')
        rows += guarded('roofline', lambda: roofline.measure_rates(device, args.matmul_n, args.conv_size,
                                                                         args.runs, args.warmup))
    photos = None
    if {'gimsanet', 'official'} & set(args.sections):
        try:
            photos = photo_data.load_photos(args.photos or photo_data.PHOTOS, args.size)
        except RuntimeError as err:
            say(f'no photo checks: {err}')
    if {'gimsanet', 'profile'} & set(args.sections):
        rows += guarded('gimsanet', lambda: gimsanet_sections(args, device, photos, rows))
    if 'training' in args.sections:
        rows += guarded('training', lambda: training_section(args, device, workdir, curves))
    if 'official' in args.sections:
        rows += guarded('official', lambda: official_section(args, device, photos))
    return rows + results.check_all(targets(args), rows), curves.get('losses', {})


def main(argv=None):
    args = parse_args(argv)
    from benchmarks.perf import perf_report
    from gimsanet_arch.commands import report
    from gimsanet_arch.inference import benchmark
    from benchmarks.perf import results
    try:
        device, label = benchmark.prepare_machine(args.device, args.threads)
    except ValueError as err:
        print(f'benchmarks.perf: error: {err}', file=sys.stderr)
        return 2
    say(f'{", ".join(args.sections)} on {label}')
    with tempfile.TemporaryDirectory(prefix='gimsanet_perf_') as workdir:
        rows, losses = measure_all(args, device, workdir)
    os.makedirs(args.out, exist_ok=True)
    text = perf_report.markdown(label, args, rows)
    written = [report.write_csv(rows, osp.join(args.out, 'perf.csv'), results.KEYS)]
    with open(osp.join(args.out, 'perf.md'), 'w') as f:
        f.write(text)
    written.append(osp.join(args.out, 'perf.md'))
    if losses:
        written += perf_report.write_losses(losses, args.out)
    print(text)
    if report.pyplot() is None:
        print('note: matplotlib is not installed, so no PNG (pip install "gimsanet_arch[plots]")')
    errors = [r for r in rows if str(r['note']).startswith('error')]
    for r in errors:
        print(f'warning: {r["section"]} / {r["name"]}: {r["note"]}', file=sys.stderr)
    print('wrote ' + ', '.join(written))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
