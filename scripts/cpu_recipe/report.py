"""Tables and plots of the CPU-recipe runs from the CSVs of ``score_runs.py`` (docs/cpu_recipe.md).

    python scripts/cpu_recipe/report.py table docs/cpu_recipe/pilots.csv --baseline Pilot_base
        # Markdown table: one row per run (last checkpoint), PSNR/SSIM at each sigma, difference at sigma 25
    python scripts/cpu_recipe/report.py curve docs/cpu_recipe/grad_branch.csv --sigma 25 \\
        --out docs/cpu_recipe/grad_branch.png   # validation PSNR against CPU-hours, one line per run
"""
import argparse
import csv
import os.path as osp
import sys
from collections import defaultdict


def read_rows(path, weights=('params',)):
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r['weights'] in weights]


def label(run):
    """``train_GIMSANet_Pilot_lr1e-3`` -> ``Pilot_lr1e-3``; ``train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU`` ->
    ``GIMSANet-NoGrad``."""
    name = run[len('train_'):] if run.startswith('train_') else run
    name = name[len('GIMSANet_'):] if name.startswith('GIMSANet_Pilot') else name
    for tail in ('_BlindColor_CBSD432_CPU', '_BlindGray_BSD400_CPU'):
        name = name[:-len(tail)] if name.endswith(tail) else name
    return 'GIMSANet (official map, raw)' if name == 'GIMSANet' else name


def last_checkpoint_table(rows, baseline=None, delta_sigma='25'):
    by_run = defaultdict(dict)
    for r in rows:
        it = int(r['iteration'])
        run = by_run[r['run']]
        if it >= run.get('_it', -1):
            if it > run.get('_it', -1):
                run.clear()
                run['_it'], run['_cpu'] = it, r['cpu_h']
            run[r['sigma']] = (float(r['psnr']), float(r['ssim']))
    sigmas = sorted({s for run in by_run.values() for s in run if not s.startswith('_')}, key=float)
    base = next((v for k, v in by_run.items() if baseline and label(k).endswith(baseline)), None)
    head = ['run', 'iterations', 'CPU-h'] + [f'σ {s} PSNR / SSIM' for s in sigmas]
    if base:
        head.append(f'Δ σ {delta_sigma} vs {baseline}')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for run in sorted(by_run, key=lambda k: -by_run[k].get(delta_sigma, (0, 0))[0]):
        v = by_run[run]
        cells = [label(run), f'{v["_it"]:,}', f'{float(v["_cpu"]):.2f}' if v['_cpu'] else '']
        cells += [f'{v[s][0]:.2f} / {v[s][1]:.4f}' if s in v else '' for s in sigmas]
        if base:
            cells.append(f'{v[delta_sigma][0] - base[delta_sigma][0]:+.2f}' if delta_sigma in v else '')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def data_label(paths):
    """``datasets/BSD400/val.lmdb`` -> ``BSD400 hold-out``: the axis names the images it was scored on."""
    names = []
    for path in sorted(set(paths)):
        parts = path.replace('\\', '/').rstrip('/').split('/')
        stem = osp.splitext(parts[-1])[0]
        names.append(f'{parts[-2]} hold-out' if stem == 'val' and len(parts) > 1 else '/'.join(parts[-2:]))
    return ' + '.join(names)


def plot_curve(rows, sigma, out, title, ymin=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    curves = defaultdict(list)
    rows = [r for r in rows if r['sigma'] == sigma and r['cpu_h']]
    for r in rows:
        curves[(r['run'], r['weights'])].append((float(r['cpu_h']), float(r['psnr'])))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    colours = {}
    for (run, weights), points in sorted(curves.items()):
        points.sort()
        colour = colours.setdefault(run, f'C{len(colours)}')  # one colour per run; EMA dashed
        ema = weights == 'params_ema'
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if ymin is not None:  # a divergence far below the rest: drawn on the axis floor, its value written
            for x, y in points:
                if y < ymin:
                    ax.annotate(f'{y:.1f}', (x, ymin), xytext=(3, 3), textcoords='offset points', fontsize=7,
                                color=colour)
            ys = [max(y, ymin) for y in ys]
        ax.plot(xs, ys, marker='o', ms=3, color=colour, linestyle='--' if ema else '-',
                label=label(run) + (' (EMA)' if ema else ''))
    if ymin is not None:
        ax.set_ylim(bottom=ymin)
    ax.set_xlabel('CPU-hours of training (one thread)')
    n_images = sorted({r['images'] for r in rows})
    ax.set_ylabel(f'PSNR (dB), σ {sigma}, {data_label(r["data"] for r in rows)} ({"/".join(n_images)} images)')
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('what', choices=['table', 'curve'])
    p.add_argument('csv')
    p.add_argument('--weights', nargs='+', default=['params'],
                   help='which weights: params (raw), params_ema, or both (curve: EMA dashed)')
    p.add_argument('--baseline', help='run label the table compares with (e.g. Pilot_base)')
    p.add_argument('--sigma', default='25')
    p.add_argument('--out', help='curve: the PNG to write')
    p.add_argument('--ymin', type=float, help='curve: lowest PSNR shown (lower points sit on the floor, labelled)')
    p.add_argument('--title', default='GIMSANet colour, blind sigma, CPU budget')
    args = p.parse_args(argv)
    if not osp.isfile(args.csv):
        print(f'error: {args.csv} not found (run score_runs.py first)', file=sys.stderr)
        return 2
    rows = read_rows(args.csv, args.weights)
    if args.what == 'table':
        print(last_checkpoint_table(rows, args.baseline, args.sigma))
    else:
        print(plot_curve(rows, args.sigma, args.out or osp.splitext(args.csv)[0] + '.png', args.title,
                         args.ymin))
    return 0


if __name__ == '__main__':
    sys.exit(main())
