#!/usr/bin/env python
"""Turn a real-noise run (docs/real_noise.md) into shipped weights (gimsanet_arch/weights/).

    python scripts/real_noise/ship_real_weights.py --run experiments/train_GIMSANet-NoGrad_RealCamera_CBSD432_CPU \\
        [--iteration N] [--key params_ema] [--name GIMSANet_RealCamera_CBSD432]

The checkpoint (default: the newest) and the weights (raw or EMA; default: the better of the two on the
hold-out) are chosen on the CBSD432 hold-out with the run's own seeded synthetic noise
(``score_real.py holdout``, rows in ``--holdout-scores``; missing rows are scored first). Only then
are PolyU and Nam scored (``score_real.py real``, rows added to ``--real-scores`` under the shipped
name) and written into the record. Writes ``<name>.safetensors`` and ``<name>.json`` into a scratch
folder and moves both into place at the end (an interrupted ship keeps the old pair), and copies the
run's training logs to docs/real_noise/logs/.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'scripts', 'cpu_recipe'))
from ship_weights import TRAINED_ON, option_file, write_record  # noqa: E402  (the AWGN ship's helpers)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run', required=True, help='the run folder (experiments/<name>)')
    p.add_argument('--name', default='GIMSANet_RealCamera_CBSD432', help='name of the shipped files')
    p.add_argument('--iteration', type=int, default=None, help='checkpoint to ship (default: the newest)')
    p.add_argument('--key', choices=['params', 'params_ema'], default=None,
                   help='weights to ship (default: the better of the two on the hold-out)')
    p.add_argument('--holdout-scores', default='docs/real_noise/holdout.csv')
    p.add_argument('--real-scores', default='docs/real_noise/real.csv')
    p.add_argument('--weights-dir', default=None, help='where the pair goes (default: the package weights folder)')
    p.add_argument('--logs-dir', default='docs/real_noise/logs')
    return p.parse_args(argv)


def holdout_rows(path, run, iteration):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r['run'] == osp.basename(run) and int(r['iteration']) == iteration]


def noise_text(train):
    model = train.get('noise_model', 'camera')
    if model == 'camera':
        return ('synthetic camera noise (CameraNoiseDataset: unprocessing to raw, shot/read noise on Bayer sites, '
                'demosaicked, developed, 8 bits, JPEG with probability 0.7)')
    return 'heteroscedastic Gaussian noise in sRGB (CameraNoiseDataset noise_model srgb), 8 bits, JPEG'


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    import torch
    import gimsanet_arch  # noqa: F401
    from gimsanet_arch.inference import network, shipped_weights
    from gimsanet_arch.training.resume import numbered_checkpoints
    from gimsanet_arch.training.safetensors_io import save_safetensors_checkpoint
    run = args.run.rstrip('/')
    saved = numbered_checkpoints(run)
    if not saved:
        raise SystemExit(f'error: no numbered checkpoints in {run}/models')
    iteration = args.iteration if args.iteration is not None else saved[-1][0]
    path = dict(saved).get(iteration)
    if path is None:
        raise SystemExit(f'error: {run}/models has no checkpoint of iteration {iteration}')
    opt_path = option_file(run)
    opt = network.load_yaml(opt_path)
    score = [sys.executable, 'scripts/real_noise/score_real.py']
    rows = holdout_rows(args.holdout_scores, run, iteration)
    if {r['weights'] for r in rows} != ({args.key} if args.key else {'params', 'params_ema'}):
        subprocess.run(score + ['holdout', '--runs', run, '--out', args.holdout_scores, '--all-checkpoints'],
                       check=True)
        rows = holdout_rows(args.holdout_scores, run, iteration)
    psnr = {r['weights']: float(r['psnr']) for r in rows}
    key = args.key or max(psnr, key=psnr.get)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    params = {k: v.float().contiguous() for k, v in ckpt[key].items()}
    chosen = next(r for r in rows if r['weights'] == key)
    train = opt['datasets']['train']
    data = next((v for k, v in TRAINED_ON.items() if k in train['dataroot_gt']), train['dataroot_gt'])

    weights_dir = args.weights_dir or shipped_weights.WEIGHTS_DIR
    os.makedirs(weights_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix='.ship-', dir=weights_dir)
    try:
        staged = osp.join(scratch, args.name + '.safetensors')
        save_safetensors_checkpoint({'params': params}, staged,
                                    metadata={'arch': opt['network_g']['type'], 'name': args.name})
        record = {
            'network_g': dict(opt['network_g']),
            'noise': noise_text(train),
            'trained_on': f'{data}, random {train["gt_size"]}x{train["gt_size"]} patches with flips/rotations',
            'start': f'fine-tuned from {opt["path"].get("pretrain_network_g")}',
            'iterations': iteration,
            'batch': f'{train["batch_size_per_gpu"]} x {train["gt_size"]}x{train["gt_size"]}',
            'cpu_hours': float(chosen['cpu_h'] or 0),
            'recipe': 'docs/real_noise.md: Adam, cosine over the CPU budget, one thread',
            'option_file': osp.relpath(opt_path, ROOT),
            'weights': f'EMA (decay {opt["train"].get("ema_decay")})' if key == 'params_ema' else 'raw (no EMA)',
            'validation': f'hold-out ({chosen["images"]} images, seeded {chosen["data"].split(":")[-1]} noise): '
                          f'PSNR {float(chosen["psnr"]):.2f} dB, SSIM {float(chosen["ssim"]):.4f}',
            'sha256': shipped_weights.sha256(staged),
        }
        write_record(osp.join(scratch, args.name + '.json'), record)
        # the test sets are scored only now, after the checkpoint and key were chosen on the hold-out
        real_rows = [r for r in _read(args.real_scores) if r['method'] == args.name]
        if real_rows:  # weights shipped again under the same name: score them anew
            _write_without(args.real_scores, args.name)
        subprocess.run(score + ['real', '--weights', staged, '--out', args.real_scores], check=True)
        scored = [r for r in _read(args.real_scores) if r['method'] == args.name]
        record['test'] = {}
        for set_name in ('PolyU', 'Nam'):
            got = [r for r in scored if r['set'] == set_name]
            record['test'][set_name] = {'psnr': round(sum(float(r['psnr']) for r in got) / len(got), 2),
                                        'ssim': round(sum(float(r['ssim']) for r in got) / len(got), 4)}
        record['test_protocol'] = ('whole 512x512 image, RGB, peak 255, per-image PSNR/SSIM averaged (MCWNNM/TWSC); '
                                   'fp32 where the CPU has no bf16 (scripts/real_noise/score_real.py real)')
        write_record(osp.join(scratch, args.name + '.json'), record)
        target = osp.join(weights_dir, args.name + '.safetensors')
        os.replace(staged, target)
        os.replace(osp.join(scratch, args.name + '.json'), osp.join(weights_dir, args.name + '.json'))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(args.logs_dir, exist_ok=True)
    logs = sorted(glob.glob(osp.join(run, 'train_*.log')))
    with open(osp.join(args.logs_dir, osp.basename(run) + '.log'), 'w') as out:
        for log in logs:
            with open(log) as f:
                out.write(f.read())
    print(f'wrote {target} (iter {iteration}, {key}, {record["cpu_hours"]} CPU-h) and its .json: '
          f'PolyU {record["test"]["PolyU"]["psnr"]} dB, Nam {record["test"]["Nam"]["psnr"]} dB')
    return 0


def _read(path):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _write_without(path, method):
    rows = [r for r in _read(path) if r['method'] != method]
    with open(path + '.tmp', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['method', 'set', 'image', 'psnr', 'ssim', 'noise_rms'])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(path + '.tmp', path)


if __name__ == '__main__':
    sys.exit(main())
