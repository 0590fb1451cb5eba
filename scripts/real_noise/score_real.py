#!/usr/bin/env python
"""Score denoisers for the real-noise task (docs/real_noise.md).

``holdout``: training runs' checkpoints on the CBSD432 hold-out (32 images) with each run's own
synthetic noise, seeded per image (CameraNoiseDataset, ``noise_seed`` 0). This is where checkpoints,
recipes and noise-model settings are chosen: never on PolyU or Nam.

    python scripts/real_noise/score_real.py holdout --runs 'experiments/train_GIMSANet_RealPilot_*' \\
        --keys params --out docs/real_noise/pilots.csv
    python scripts/real_noise/score_real.py holdout --runs experiments/train_GIMSANet*_RealCamera_* \\
        --all-checkpoints --out docs/real_noise/holdout.csv

``real``: PolyU (100 crops) and Nam (CC15) as prepared by scripts/data_preparation/{polyu,nam}.py,
by the MCWNNM/TWSC protocol: whole 512x512 image, RGB, peak 255, per-image PSNR (MSE over all pixels
and channels) and SSIM (BasicSR's: the mean of the channels' SSIM), averaged over the set. One row per
(method, set, image), so a method is scored once and the table is rebuilt from the CSV.

    python scripts/real_noise/score_real.py real --noisy --cbm3d \\
        --weights gimsanet_arch/weights/GIMSANet-NoGrad_BlindColor_CBSD432.safetensors \\
        --checkpoint experiments/train_GIMSANet-NoGrad_RealCamera_CBSD432_CPU@8000 --out docs/real_noise/real.csv

``--cbm3d`` is the ``bm3d`` package's ``bm3d_rgb`` told each image's true noise level, the RMS of noisy
minus clean on the 0-255 scale (pip install bm3d; about 20 CPU-s an image). ``table`` prints the
markdown table (and with ``--readme`` replaces the block between its markers):

    python scripts/real_noise/score_real.py table --csv docs/real_noise/real.csv --readme README.md
"""
import argparse
import csv
import glob
import os
import os.path as osp
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'scripts', 'cpu_recipe'))
import score_runs  # noqa: E402  (run folders, checkpoints, CPU-hours, network options: shared with the AWGN scoring)

HOLDOUT_FIELDS = ['run', 'iteration', 'cpu_h', 'weights', 'data', 'psnr', 'ssim', 'images']
REAL_FIELDS = ['method', 'set', 'image', 'psnr', 'ssim', 'noise_rms']
SETS = {'PolyU': 'datasets/PolyU/test', 'Nam': 'datasets/Nam/test'}
# the noise options a run's training set gives its hold-out (everything else is the hold-out's own)
NOISE_KEYS = ('noise_model', 'shot_range', 'read_noise_fit', 'ccm_strength', 'jpeg_prob', 'jpeg_quality', 'quantize')
TABLE_BEGIN, TABLE_END = '<!-- real-noise table begin -->', '<!-- real-noise table end -->'


def read_rows(path):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def write_rows(path, rows, fields, key):
    """Write ``rows`` merged with the rows already in ``path`` (a row of ``rows`` wins), so that two
    scoring processes on one CSV (e.g. CBM3D beside a network) keep each other's rows."""
    merged = {key(r): r for r in read_rows(path)}
    merged.update({key(r): r for r in rows})
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(sorted(merged.values(), key=key))
    os.replace(tmp, path)


def run_denoiser(net, multiple, dtype):
    from gimsanet_arch.inference import evaluate
    return lambda noisy: evaluate.denoise_hwc(net, noisy, multiple, dtype=dtype)


# ----------------------------------------------------------------------------- hold-out
def holdout_pairs(train_opt, data, cache):
    """``[(noisy, clean uint8)]`` of the hold-out with the run's training noise, seeded per image."""
    from gimsanet_arch.data.camera_noise_dataset import CameraNoiseDataset
    from gimsanet_arch.inference.evaluate import to_uint8
    noise = {k: train_opt[k] for k in NOISE_KEYS if k in train_opt}
    key = repr(sorted(noise.items()))
    if key not in cache:
        ds = CameraNoiseDataset(dict(noise, name='holdout', phase='val', dataroot_gt=data,
                                     io_backend={'type': 'lmdb'}, noise_seed=0))
        pairs = []
        for i in range(len(ds)):
            item = ds[i]
            pairs.append((item['lq'].numpy().transpose(1, 2, 0), to_uint8(item['gt'].numpy().transpose(1, 2, 0))))
        cache[key] = (pairs, noise.get('noise_model', 'camera'))
    return cache[key]


def holdout(args):
    import torch
    from gimsanet_arch.inference import engine, evaluate
    from gimsanet_arch.inference.network import ModelSpec, build, load_yaml
    from gimsanet_arch.training.checkpoint import load_checkpoint_file
    rows = read_rows(args.out)
    done = {(r['run'], r['iteration'], r['weights'], r['data']) for r in rows}
    dtype = engine.resolve_dtype(args.dtype, torch.device('cpu'))
    cache, scored = {}, {}  # scored: (file, key, data) -> (psnr, ssim), so a shared start is scored once
    for run in score_runs.run_folders(args.runs):
        name = osp.basename(osp.normpath(run))
        opt = load_yaml(sorted(glob.glob(osp.join(run, '*.yml')))[-1])
        train_opt = opt['datasets']['train']
        ckpts = score_runs.checkpoints(run)
        if args.all_checkpoints:
            ckpts = [c for i, c in enumerate(ckpts) if i % args.every == 0 or i == len(ckpts) - 1]
        else:
            ckpts = ckpts[-1:]
        if args.start and opt['path'].get('pretrain_network_g'):  # the fine-tune's starting point
            ckpts = [(0, opt['path']['pretrain_network_g'])] + ckpts
        pairs, model = holdout_pairs(train_opt, args.data, cache)
        data_name = f'{osp.relpath(args.data, ROOT) if osp.isabs(args.data) else args.data}:{model}'
        for iteration, path in ckpts:
            have = load_checkpoint_file(path)  # .pth (weights only) or .safetensors (a fine-tune's start)
            for key in args.keys:
                if (name, str(iteration), key, data_name) in done or (key not in have and iteration):
                    continue
                spec = ModelSpec(f'{name}@{iteration}:{key}', opt['network_g'], path,
                                 param_key=key if key in have else 'params')
                what = (osp.realpath(path), spec.param_key, data_name)
                if what not in scored:
                    net, multiple = build(spec)
                    denoise = run_denoiser(engine.prepare_network(net), multiple, dtype)
                    scores = [evaluate.psnr_ssim(evaluate.to_uint8(denoise(noisy)), clean) for noisy, clean in pairs]
                    scored[what] = np.mean(scores, axis=0)
                psnr, ssim = scored[what]
                hours = score_runs.cpu_hours(run, iteration) if iteration else 0
                rows.append(dict(run=name, iteration=iteration, cpu_h=hours, weights=key, data=data_name,
                                 psnr=f'{psnr:.4f}', ssim=f'{ssim:.4f}', images=len(pairs)))
                print(f'{name} iter {iteration} ({hours} CPU-h) {key}: {psnr:.2f} dB / {ssim:.4f}', flush=True)
                write_rows(args.out, rows, HOLDOUT_FIELDS, _holdout_key)
    write_rows(args.out, rows, HOLDOUT_FIELDS, _holdout_key)


def _holdout_key(r):
    return (r['run'], int(r['iteration']), r['weights'], r['data'])


# ----------------------------------------------------------------------------- PolyU and Nam
def read_real_set(folder):
    """``[(key, noisy float RGB, clean uint8 RGB)]`` of a set prepared by polyu.py / nam.py."""
    from gimsanet_prep.images import to_float
    from gimsanet_prep.verify import read_lmdb_image, read_meta_info
    inputs, gts = osp.join(folder, 'input.lmdb'), osp.join(folder, 'gt.lmdb')
    for path in (inputs, gts):
        if not osp.isdir(path):
            raise SystemExit(f'error: {path} not found: prepare the set first (scripts/data_preparation/)')
    out = []
    for key, _, _ in read_meta_info(gts):
        noisy = to_float(read_lmdb_image(inputs, key))[:, :, ::-1]
        clean = read_lmdb_image(gts, key)[:, :, ::-1]
        out.append((key, np.ascontiguousarray(noisy), np.ascontiguousarray(clean)))
    return out


def real_methods(args):
    """``[(label, denoise(noisy, rms) or None for the noisy input)]``."""
    import torch
    from gimsanet_arch.inference import engine
    from gimsanet_arch.inference.network import ModelSpec, build, load_yaml
    dtype = engine.resolve_dtype(args.dtype, torch.device('cpu'))
    methods = []
    if args.noisy:
        methods.append(('Noisy input', None))
    if args.cbm3d:
        import bm3d
        methods.append(('CBM3D (true noise level)',
                        lambda noisy, rms: np.asarray(bm3d.bm3d_rgb(noisy, rms / 255.), dtype=np.float32)))
    for path in args.weights:
        import json
        record = osp.splitext(path)[0] + '.json'
        if not osp.isfile(record):
            raise SystemExit(f'error: {path}: no record {record} with its network_g beside it')
        with open(record) as f:
            network_opt = json.load(f)['network_g']
        if int(network_opt.get('in_channels', 3)) != 3:  # PolyU and Nam are colour: gray weights cannot take them
            print(f'skipped {path}: a {network_opt.get("in_channels")}-channel network, the real-noise sets are colour')
            continue
        net, multiple = build(ModelSpec(osp.basename(osp.splitext(path)[0]), network_opt, path))
        methods.append((osp.basename(osp.splitext(path)[0]), _wrap(run_denoiser(engine.prepare_network(net), multiple, dtype))))
    for text in args.checkpoint:
        run, _, key = text.partition(':')
        run, _, iteration = run.partition('@')
        ckpts = dict(score_runs.checkpoints(run))
        if not ckpts:
            raise SystemExit(f'error: {run}: no checkpoint')
        iteration = int(iteration) if iteration else max(ckpts)
        if iteration not in ckpts:
            raise SystemExit(f'error: {run} has no checkpoint of iteration {iteration}')
        opt = load_yaml(sorted(glob.glob(osp.join(run, '*.yml')))[-1])
        key = key or 'params'
        label = f'{osp.basename(osp.normpath(run))}@{iteration}:{key}'
        net, multiple = build(ModelSpec(label, opt['network_g'], ckpts[iteration], param_key=key))
        methods.append((label, _wrap(run_denoiser(engine.prepare_network(net), multiple, dtype))))
    return methods


def _wrap(denoise):
    return lambda noisy, rms: denoise(noisy)


def real(args):
    from tqdm import tqdm
    from gimsanet_arch.inference import evaluate
    rows = read_rows(args.out)
    done = {(r['method'], r['set'], r['image']) for r in rows}
    methods = real_methods(args)
    for set_name in args.sets:
        images = read_real_set(osp.join(ROOT, SETS[set_name]))
        for label, denoise in methods:
            todo = [img for img in images if (label, set_name, img[0]) not in done]
            for key, noisy, clean in tqdm(todo, desc=f'{label} on {set_name}', unit='image', disable=not todo):
                rms = float(np.sqrt(np.mean((noisy * 255. - clean) ** 2)))
                out = noisy if denoise is None else denoise(noisy, rms)
                psnr, ssim = evaluate.psnr_ssim(evaluate.to_uint8(out), clean)
                rows.append(dict(method=label, set=set_name, image=key, psnr=f'{psnr:.4f}', ssim=f'{ssim:.4f}',
                                 noise_rms=f'{rms:.3f}'))
                write_rows(args.out, rows, REAL_FIELDS, _real_key)
    write_rows(args.out, rows, REAL_FIELDS, _real_key)
    print(table(rows))


def _real_key(r):
    return (r['method'], r['set'], r['image'])


# ----------------------------------------------------------------------------- table
# published CC15 numbers (whole-image RGB PSNR), as gathered in docs/real_noise.md with their sources
PUBLISHED_NAM = [('CBM3D, published (noise level estimated; Xu et al., ICCV 2017)', 35.19),
                 ('CBDNet, published (Guo et al., CVPR 2019)', 36.44),
                 ('MCWNNM, published (Xu et al., ICCV 2017)', 37.71),
                 ('TWSC, published (Xu et al., ECCV 2018)', 37.81)]


def table(rows, expected=None):
    """Markdown: one line per method, PSNR / SSIM on each set (the mean over its images)."""
    expected = expected or {'PolyU': 100, 'Nam': 15}
    methods = list(dict.fromkeys(r['method'] for r in rows))
    lines = ['| Method | PolyU (100) PSNR / SSIM | Nam CC15 (15) PSNR / SSIM |', '|---|---|---|']
    for method in methods:
        cells = []
        for set_name in ('PolyU', 'Nam'):
            got = [r for r in rows if r['method'] == method and r['set'] == set_name]
            if len(got) == expected[set_name]:
                cells.append(f'{np.mean([float(r["psnr"]) for r in got]):.2f} / '
                             f'{np.mean([float(r["ssim"]) for r in got]):.4f}')
            else:
                cells.append(f'({len(got)} of {expected[set_name]} images)' if got else '')
        lines.append(f'| {method} | {cells[0]} | {cells[1]} |')
    for label, psnr in PUBLISHED_NAM:
        lines.append(f'| {label} | | {psnr:.2f} |')
    return '\n'.join(lines)


def write_table(args):
    text = table(read_rows(args.csv))
    print(text)
    if args.readme:
        with open(args.readme) as f:
            readme = f.read()
        if TABLE_BEGIN not in readme or TABLE_END not in readme:
            raise SystemExit(f'error: {args.readme} has no {TABLE_BEGIN} ... {TABLE_END} block to replace')
        head, rest = readme.split(TABLE_BEGIN, 1)
        _, tail = rest.split(TABLE_END, 1)
        with open(args.readme + '.tmp', 'w') as f:
            f.write(f'{head}{TABLE_BEGIN}\n{text}\n{TABLE_END}{tail}')
        os.replace(args.readme + '.tmp', args.readme)
        print(f'updated {args.readme}')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    h = sub.add_parser('holdout', help='checkpoints on the synthetic hold-out')
    h.add_argument('--runs', nargs='+', required=True, help='run folders or globs')
    h.add_argument('--data', default='datasets/CBSD432/val.lmdb')
    h.add_argument('--keys', nargs='+', default=['params', 'params_ema'])
    h.add_argument('--all-checkpoints', action='store_true')
    h.add_argument('--every', type=int, default=1)
    h.add_argument('--start', action='store_true', help="also score a fine-tune's starting weights (iteration 0)")
    h.add_argument('--out', required=True)
    h.add_argument('--dtype', default='auto', choices=['auto', 'fp32', 'bf16'])
    r = sub.add_parser('real', help='PolyU and Nam (test sets: report only)')
    r.add_argument('--sets', nargs='+', default=['PolyU', 'Nam'], choices=sorted(SETS))
    r.add_argument('--noisy', action='store_true', help='score the noisy input')
    r.add_argument('--cbm3d', action='store_true', help='CBM3D told the true noise level')
    r.add_argument('--weights', nargs='*', default=[], help='.safetensors with a .json record beside it')
    r.add_argument('--checkpoint', nargs='*', default=[], help='RUN_FOLDER[@ITERATION][:params|params_ema]')
    r.add_argument('--out', default='docs/real_noise/real.csv', help='CSV of per-image rows (default: %(default)s)')
    r.add_argument('--dtype', default='auto', choices=['auto', 'fp32', 'bf16'])
    t = sub.add_parser('table', help='the markdown table from the CSV')
    t.add_argument('--csv', default='docs/real_noise/real.csv')
    t.add_argument('--readme', help='replace the table block of this file')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    import gimsanet_arch  # noqa: F401  (registries before basicsr)
    {'holdout': holdout, 'real': real, 'table': write_table}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
