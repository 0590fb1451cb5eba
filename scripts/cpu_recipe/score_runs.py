"""Score training runs' checkpoints on a clean-image LMDB at fixed noise levels: one CSV row per
(run, iteration, weights, sigma), with the CPU-hours the run had spent at that checkpoint.

Used for the CPU-recipe pilots, the gradient-branch comparison and the long runs
(docs/cpu_recipe.md). Choose on the hold-out (the default ``--data``), never on a test set.

    python scripts/cpu_recipe/score_runs.py --runs 'experiments/train_GIMSANet_Pilot_*' \\
        --out docs/cpu_recipe/pilots.csv                     # final checkpoints, raw and EMA weights
    python scripts/cpu_recipe/score_runs.py --runs experiments/train_GIMSANet_CBSD432_* \\
        --all-checkpoints --keys params --out docs/cpu_recipe/grad_branch.csv   # the curve

Protocol (docs/evaluation.md#standard-awgn-protocol): noise seeded with 0 per image, added to the
RGB float image, not clipped; outputs clamped and rounded to uint8; BasicSR's PSNR and SSIM on all
channels, no border crop. The networks run through the inference engine (``--dtype``: ``auto`` is
bf16 autocast where the CPU has it natively, fast and within a few hundredths of a dB of ``fp32``).
Rows already in ``--out`` are not scored again, so the curve of a running run grows cheaply.
"""
import argparse
import csv
import glob
import os
import os.path as osp
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIELDS = ['run', 'iteration', 'cpu_h', 'weights', 'data', 'sigma', 'psnr', 'ssim', 'images']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--runs', nargs='+', required=True, help='run folders (experiments/<name>) or globs of them')
    p.add_argument('--data', default='datasets/CBSD432/val.lmdb', help='LMDB of clean images (the hold-out)')
    p.add_argument('--sigmas', nargs='+', type=float, default=[15, 25, 50])
    p.add_argument('--keys', nargs='+', default=['params', 'params_ema'],
                   help='checkpoint keys to score (a key a checkpoint lacks is skipped)')
    p.add_argument('--all-checkpoints', action='store_true', help='every saved checkpoint, not only the last')
    p.add_argument('--iteration', type=int, default=None, help='score only this checkpoint of each run')
    p.add_argument('--every', type=int, default=1, help='with --all-checkpoints: every n-th checkpoint (and the last)')
    p.add_argument('--out', required=True, help='CSV to write (rows already there are kept and not re-scored)')
    p.add_argument('--dtype', default='auto', choices=['auto', 'fp32', 'bf16'])
    p.add_argument('--threads', type=int, default=None)
    return p.parse_args(argv)


def run_folders(patterns):
    folders = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        folders += [f for f in found if osp.isdir(osp.join(f, 'models'))]
    if not folders:
        raise SystemExit(f'error: no run folder with models/ in {" ".join(patterns)}')
    return folders


def checkpoints(run):
    """``[(iteration, path)]`` of a run's numbered network checkpoints, in order."""
    from gimsanet_arch.training.resume import numbered_checkpoints
    return numbered_checkpoints(run)


def cpu_hours(run, iteration):
    """CPU-hours the run had spent at ``iteration`` (from its training state), or ''."""
    from gimsanet_arch.training.safe_state import load_state_file
    path = osp.join(run, 'training_states', f'{iteration}.state')
    if not osp.isfile(path):
        return ''
    state = load_state_file(path)  # weights-only: a run folder may come from elsewhere
    budget = state.get('gimsanet_cpu_budget')
    return round(budget['spent_s'] / 3600., 4) if budget else ''


def network_options(run):
    """``network_g`` of the option file BasicSR copied into the run folder."""
    from gimsanet_arch.inference.network import load_yaml
    ymls = sorted(glob.glob(osp.join(run, '*.yml')))
    if not ymls:
        raise SystemExit(f'error: {run}: no option file (*.yml) in the run folder')
    return load_yaml(ymls[-1])['network_g']


def read_lmdb_images(path, in_ch):
    """``[(key, clean float32 HxWxC, RGB or gray)]`` of every image in the LMDB."""
    from gimsanet_prep.images import match_channels, to_float
    from gimsanet_prep.verify import read_lmdb_image, read_meta_info
    images = []
    for key, _, _ in read_meta_info(path):
        img = match_channels(to_float(read_lmdb_image(path, key)), in_ch, f'{path}:{key}')
        images.append((key, np.ascontiguousarray(img[:, :, ::-1]) if in_ch == 3 else img))
    return images


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    import torch
    import gimsanet_arch  # noqa: F401  (registries before basicsr)
    from gimsanet_arch.inference import engine, evaluate
    from gimsanet_arch.inference.network import ModelSpec, build
    if args.threads:
        torch.set_num_threads(args.threads)
    done = {}
    if osp.isfile(args.out):
        with open(args.out) as f:
            done = {(r['run'], r['iteration'], r['weights'], r['data'], r['sigma']): r for r in csv.DictReader(f)}
    data_name = osp.relpath(args.data, ROOT) if osp.isabs(args.data) else args.data
    sets, rows = {}, list(done.values())
    for run in run_folders(args.runs):
        name = osp.basename(osp.normpath(run))
        network_opt = network_options(run)
        ckpts = checkpoints(run)
        if args.iteration is not None:
            ckpts = [c for c in ckpts if c[0] == args.iteration]
            if not ckpts:
                raise SystemExit(f'error: {run}/models has no checkpoint of iteration {args.iteration}')
        elif args.all_checkpoints:
            ckpts = [c for i, c in enumerate(ckpts) if i % args.every == 0 or i == len(ckpts) - 1]
        else:
            ckpts = ckpts[-1:]
        for iteration, path in ckpts:
            have = torch.load(path, map_location='cpu', weights_only=True)
            for key in args.keys:
                todo = [s for s in args.sigmas if (name, str(iteration), key, data_name, f'{s:g}') not in done]
                if key not in have or not todo:
                    continue
                spec = ModelSpec(f'{name}@{iteration}:{key}', network_opt, path, param_key=key)
                if data_name not in sets:
                    sets[data_name] = read_lmdb_images(args.data, spec.in_ch)
                net, multiple = build(spec)
                scored, _ = evaluate.score_sets({spec.name: (engine.prepare_network(net), multiple)},
                                                {data_name: sets[data_name]}, todo, progress=False,
                                                dtype=engine.resolve_dtype(args.dtype, torch.device('cpu')))
                hours = cpu_hours(run, iteration)
                for r in scored:
                    rows.append(dict(run=name, iteration=iteration, cpu_h=hours, weights=key, data=data_name,
                                     sigma=f'{r["sigma"]:g}', psnr=f'{r["psnr"]:.4f}', ssim=f'{r["ssim"]:.4f}',
                                     images=r['images']))
                    print(f'{name} iter {iteration} ({hours} CPU-h) {key} sigma {r["sigma"]:g}: '
                          f'{r["psnr"]:.2f} dB / {r["ssim"]:.4f}', flush=True)
                write_csv(args.out, rows)  # after every checkpoint: an interrupted scoring keeps its rows
    write_csv(args.out, rows)


def write_csv(path, rows):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    rows = sorted(rows, key=lambda r: (r['run'], int(r['iteration']), r['weights'], r['data'], float(r['sigma'])))
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


if __name__ == '__main__':
    sys.exit(main())
