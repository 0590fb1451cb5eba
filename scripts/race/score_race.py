"""Score the same-budget race (docs/race.md): every entrant's final weights at sigma 15/25/50 on the
held-out PackagePhotos validation photos and on skimage.data photos, BM3D beside them, and the
PSNR-vs-CPU-hours curve of every saved checkpoint.

    bash scripts/race/run_race.sh          # train the entrants first (0.5 CPU-hour each)
    python scripts/race/score_race.py      # -> docs/race/race.csv, race.md, race_curve.csv, race.png

Entrants are the option files options/train/Race/train_<label>_Race_PackagePhotos.yml with a run in
experiments/. Protocol (docs/evaluation.md#standard-awgn-protocol): noise seeded with 0 per image,
added to the RGB float image, not clipped; outputs clamped and rounded to uint8; BasicSR's PSNR and
SSIM (RGB, no border crop). The table's networks run in fp32; the curve's checkpoints through the
engine's default path (bf16 where the CPU has it natively: a point moves by < 0.05 dB).
BM3D is the `bm3d` package (pip install bm3d; ``--no-bm3d`` skips it), colour BM3D told the true
sigma. Each entrant's CPU-hours and iterations come from its saved training states.
"""
import argparse
import csv
import glob
import os
import os.path as osp
import re
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OPTION_GLOB = 'options/train/Race/train_*_Race_PackagePhotos.yml'
VAL_LMDB = 'datasets/PackagePhotos/val.lmdb'
# real photos in skimage.data, none of them in the race's training set (PackagePhotos only)
SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'stereo_motorcycle')
CROP = 256  # centre crops: every method sees the same pixels and BM3D stays affordable
LOG_LINE = re.compile(r'iter:\s*([\d,]+).*?l_pix: ([\d.e+-]+).*?cpu_h: ([\d.e+-]+)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sigmas', nargs='+', type=float, default=[15, 25, 50])
    p.add_argument('--curve-sigma', type=float, default=25, help='sigma of the PSNR-vs-CPU-hours curve (val set)')
    p.add_argument('--out', default='docs/race')
    p.add_argument('--no-bm3d', action='store_true')
    p.add_argument('--bm3d-only', action='store_true',
                   help='score BM3D alone into <out>/bm3d.csv (slow: ~10 CPU-s an image); later runs reuse that file')
    p.add_argument('--no-curve', action='store_true', help='score the final weights only')
    p.add_argument('--threads', type=int, default=None)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- runs
def entrants():
    """``[(label, option file, run folder)]`` of every race option file with a run."""
    found = []
    for opt in sorted(glob.glob(osp.join(ROOT, OPTION_GLOB))):
        name = osp.splitext(osp.basename(opt))[0]
        label = name[len('train_'):-len('_Race_PackagePhotos')]
        run = osp.join(ROOT, 'experiments', name)
        if checkpoints(run):
            found.append((label, opt, run))
        else:
            print(f'note: {label}: no run in {run} (bash scripts/race/run_race.sh)')
    return found


def checkpoints(run):
    """``[(iteration, path)]`` of a run's numbered network checkpoints, in order."""
    from gimsanet_arch.training.resume import numbered_checkpoints
    return numbered_checkpoints(run)


def budget_at(run, iteration):
    """``(CPU-hours, wall hours, budget hours)`` spent up to ``iteration`` (from its training state)."""
    from gimsanet_arch.training.safe_state import load_state_file
    state = load_state_file(osp.join(run, 'training_states', f'{iteration}.state'))  # weights-only
    budget = state.get('gimsanet_cpu_budget')
    if not budget:
        raise ValueError(f'{run}: training state {iteration} has no CPU budget count (train.cpu_budget_hours unset?)')
    return budget['spent_s'] / 3600., budget['wall_s'] / 3600., budget['limit_s'] / 3600.


def loss_log(run):
    """``[(iteration, cpu_h, l_pix)]`` from a run's training logs (every resumed chunk)."""
    points = []
    for log in sorted(glob.glob(osp.join(run, 'train_*.log'))):
        with open(log) as f:
            for line in f:
                match = LOG_LINE.search(line)
                if match:
                    points.append((int(match.group(1).replace(',', '')), float(match.group(3)),
                                   float(match.group(2))))
    return sorted(points)


# ----------------------------------------------------------------------------- test images
def val_photos():
    import lmdb
    from gimsanet_prep.images import decode, to_float
    path = osp.join(ROOT, VAL_LMDB)
    if not osp.isdir(path):
        raise SystemExit(f'{VAL_LMDB} missing: python scripts/data_preparation/package_photos.py')
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        images = [(key.decode(), to_float(decode(value, key.decode(), mode='color'))[:, :, ::-1].copy())
                  for key, value in txn.cursor()]
    env.close()
    return images


def skimage_photos():
    from skimage import data
    from gimsanet_arch.inference.evaluate import crop_box
    images = []
    for name in SKIMAGE_PHOTOS:
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img  # stereo pair: the left view
        top, left, size = crop_box(img, CROP)
        images.append((name, img[top:top + size, left:left + size].astype(np.float32) / 255.))
    return images


def bm3d_denoiser():
    import bm3d
    return lambda noisy, sigma: np.asarray(bm3d.bm3d_rgb(noisy, sigma / 255.), dtype=np.float32)


# ----------------------------------------------------------------------------- scoring
def build(label, opt, checkpoint):
    from gimsanet_arch.inference import network
    spec = network.spec_from_option_file(opt, name=label)
    # the raw weights: an EMA at decay 0.999 lags ~1000 iterations, as long as these runs
    spec.checkpoint, spec.param_key = checkpoint, 'params'
    return spec, network.build(spec, 'cpu')


NO_BUDGET = dict(iterations='', cpu_hours='', budget_hours='', wall_hours='', params=0, macs_per_pixel='')


def final_rows(runs, sets, sigmas):
    import torch
    from gimsanet_arch.inference import cost, evaluate
    models, info = {}, {}
    for label, opt, run in runs:
        iteration, path = checkpoints(run)[-1]
        spec, (net, multiple) = build(label, opt, path)
        cpu_h, wall_h, limit_h = budget_at(run, iteration)
        models[label] = (net, multiple)
        info[label] = dict(iterations=iteration, cpu_hours=round(cpu_h, 3), budget_hours=limit_h,
                           wall_hours=round(wall_h, 3), params=cost.count_params(net),
                           macs_per_pixel=round(cost.macs_per_pixel(net, 3, 64, multiple)))
    rows, _ = evaluate.score_sets(models, sets, sigmas, dtype=torch.float32)
    return [dict(row, **info[row['model']]) for row in rows]


def bm3d_rows(sets, sigmas, cache):
    """BM3D's scores, from ``cache`` (a CSV an earlier run wrote) when it covers ``sigmas``."""
    from gimsanet_arch.inference import evaluate
    if osp.isfile(cache):
        with open(cache) as f:
            cached = [dict(r, sigma=float(r['sigma']), psnr=float(r['psnr']), ssim=float(r['ssim']),
                           images=int(r['images']), params=0) for r in csv.DictReader(f)]
        if {(r['data'], r['sigma']) for r in cached} >= {(d, float(s)) for d in sets for s in sigmas}:
            print(f'BM3D: scores from {cache}')
            return [r for r in cached if r['sigma'] in sigmas]
    rows, _ = evaluate.score_sets({'BM3D': bm3d_denoiser()}, sets, sigmas)
    rows = [dict(r, **NO_BUDGET) for r in rows]
    write_csv(rows, cache)
    return rows


def curve_rows(runs, images, sigma):
    from gimsanet_arch.inference import evaluate
    rows = []
    for label, opt, run in runs:
        for iteration, path in checkpoints(run):
            _, model = build(label, opt, path)
            # the engine's default path (bf16 where native): a curve point moves < 0.05 dB, at half the cost
            scored, _ = evaluate.score_sets({label: model}, {'val': images}, [sigma], progress=False)
            cpu_h = budget_at(run, iteration)[0]
            rows.append(dict(model=label, iteration=iteration, cpu_hours=round(cpu_h, 4), psnr=scored[0]['psnr']))
            print(f'{label} iter {iteration}: {cpu_h:.3f} CPU-h, PSNR {scored[0]["psnr"]:.2f} dB', flush=True)
    return rows


# ----------------------------------------------------------------------------- reports
def write_csv(rows, path):
    keys = list(rows[0])
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def markdown_table(rows, sigmas):
    """One line per method: PSNR / SSIM per (data set, sigma), then its budget."""
    sets = list(dict.fromkeys(r['data'] for r in rows))
    models = list(dict.fromkeys(r['model'] for r in rows))
    cell = {(r['model'], r['data'], r['sigma']): r for r in rows}
    head = ['Method'] + [f'{d} σ{s:g}' for d in sets for s in sigmas] + ['Iterations', 'CPU-hours', 'Params',
                                                                          'MACs/px']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for model in models:
        first = cell[(model, sets[0], sigmas[0])]
        scores = [f'{cell[(model, d, s)]["psnr"]:.2f} / {cell[(model, d, s)]["ssim"]:.3f}' for d in sets for s in sigmas]
        extra = [str(first['iterations']), str(first['cpu_hours']), f'{first["params"]:,}' if first['params'] else '',
                 f'{first["macs_per_pixel"]:,}' if first['macs_per_pixel'] != '' else '']
        lines.append('| ' + ' | '.join([model] + scores + extra) + ' |')
    return '\n'.join(lines)


def noisy_rows(sets, sigmas):
    """The noisy inputs' own PSNR/SSIM, as a reference line."""
    from gimsanet_arch.inference.evaluate import score_sets
    rows, _ = score_sets({'noisy input': lambda noisy, sigma: noisy}, sets, sigmas, progress=False)
    return [dict(r, **NO_BUDGET) for r in rows]


def _running_mean(values, parts=40):
    k = max(1, len(values) // parts)
    return np.convolve(values, np.ones(k) / k, mode='valid'), k


def write_plot(curve, losses, bm3d_psnr, sigma, path, shipped='GIMSANet'):
    """Three panels: PSNR vs CPU-hours of every entrant, training loss vs CPU-hours, and the shipped
    entrant's PSNR and loss against iterations."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('no plot: pip install "gimsanet_arch[plots]"')
        return None
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.4))
    for label in dict.fromkeys(r['model'] for r in curve):
        pts = [(r['cpu_hours'], r['psnr']) for r in curve if r['model'] == label]
        ax1.plot(*zip(*pts), marker='o', ms=3, label=label)
    if bm3d_psnr is not None:
        ax1.axhline(bm3d_psnr, color='k', ls='--', lw=1, label='BM3D')
    ax1.set(xlabel='CPU-hours (one thread)', ylabel=f'PSNR (dB), val σ{sigma:g}', title='Every saved checkpoint')
    for label, pts in losses.items():
        if pts:
            _, cpu_h, loss = zip(*pts)
            smooth, k = _running_mean(loss)
            ax2.plot(cpu_h[k - 1:], smooth, label=label)
    ax2.set(xlabel='CPU-hours (one thread)', ylabel='training L1 loss (running mean)', title='Training loss',
            yscale='log')
    pts = [(r['iteration'], r['psnr']) for r in curve if r['model'] == shipped]
    if pts:
        ax3.plot(*zip(*pts), marker='o', color='C0', label=f'PSNR, val σ{sigma:g}')
    ax3.set(xlabel='iteration', ylabel='PSNR (dB)', title=f'{shipped} (the shipped weights)')
    if losses.get(shipped):
        its, _, loss = zip(*losses[shipped])
        smooth, k = _running_mean(loss)
        twin = ax3.twinx()
        twin.plot(its[k - 1:], smooth, color='C3', label='L1 loss')
        twin.set(ylabel='training L1 loss (running mean)', yscale='log')
        twin.legend(loc='upper center')
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.legend(loc='best' if ax is not ax3 else 'center right')
    fig.suptitle('Same-budget race: 0.5 CPU-hour each, blind AWGN σ∈[0,55], PackagePhotos')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    import gimsanet_arch  # noqa: F401  (registers the archs)
    os.chdir(ROOT)
    os.makedirs(args.out, exist_ok=True)
    sets = {'PackagePhotos-val': val_photos(), 'skimage': skimage_photos()}
    bm3d_cache = osp.join(args.out, 'bm3d.csv')
    if args.bm3d_only:
        bm3d_rows(sets, args.sigmas, bm3d_cache)
        return 0
    runs = entrants()
    if not runs:
        print('no race runs found', file=sys.stderr)
        return 2
    rows = noisy_rows(sets, args.sigmas) + final_rows(runs, sets, args.sigmas)
    # the curve before BM3D: a `--bm3d-only` run started alongside has then usually written its cache
    curve = [] if args.no_curve else curve_rows(runs, sets['PackagePhotos-val'], args.curve_sigma)
    if not args.no_bm3d:
        rows += bm3d_rows(sets, args.sigmas, bm3d_cache)
    write_csv(rows, osp.join(args.out, 'race.csv'))
    table = markdown_table(rows, args.sigmas)
    with open(osp.join(args.out, 'race.md'), 'w') as f:
        f.write('PSNR (dB) / SSIM, centre 256x256 crops, seed 0 per image (scripts/race/score_race.py)\n\n'
                + table + '\n')
    print(table)
    if curve:
        write_csv(curve, osp.join(args.out, 'race_curve.csv'))
        bm3d = [r['psnr'] for r in rows if r['model'] == 'BM3D' and r['data'] == 'PackagePhotos-val'
                and r['sigma'] == args.curve_sigma]
        plot = write_plot(curve, {label: loss_log(run) for label, _, run in runs}, bm3d[0] if bm3d else None,
                          args.curve_sigma, osp.join(args.out, 'race.png'))
        print(f'wrote {args.out}/race.csv, race.md, race_curve.csv' + (f', {plot}' if plot else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
