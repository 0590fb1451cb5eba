"""Turn a finished training run into the package's shipped weights (gimsanet_arch/weights/).

    python scripts/race/ship_weights.py                       # the GIMSANet race run
    python scripts/race/ship_weights.py --run experiments/train_GIMSANet_BlindColor_PackagePhotos \\
        --opt options/train/GIMSANet/train_GIMSANet_BlindColor_PackagePhotos.yml

Writes ``<name>.pth`` (``{'params': the run's raw weights}``, fp32; ``--ema`` for its EMA weights) and ``<name>.json`` (network options,
data, noise, iterations, CPU-hours, option file, validation scores from docs/race/race.csv when
present), and copies the run's training log(s) to docs/race/logs/. ``gimsanet-denoise`` without a
model uses these weights (gimsanet_arch/inference/shipped_weights.py).
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RACE_OPT = 'options/train/Race/train_GIMSANet_Race_PackagePhotos.yml'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--opt', default=RACE_OPT, help='the option file the run was trained with')
    p.add_argument('--run', default=None, help='the run folder (default: experiments/<option name>)')
    p.add_argument('--name', default='GIMSANet_BlindColor_PackagePhotos')
    p.add_argument('--scores', default='docs/race/race.csv', help='race scores for the validation line')
    p.add_argument('--ema', action='store_true', help="ship the EMA weights ('params_ema') instead of 'params'")
    p.add_argument('--label', default='GIMSANet', help='the run\'s model name in --scores')
    return p.parse_args(argv)


def validation_text(scores, label):
    if not osp.isfile(scores):
        return 'not scored yet (scripts/race/score_race.py)'
    with open(scores) as f:
        rows = [r for r in csv.DictReader(f) if r['model'] == label and float(r['sigma']) == 25]
    return '; '.join(f'{r["data"]} sigma 25: PSNR {float(r["psnr"]):.2f} dB, SSIM {float(r["ssim"]):.4f} '
                     f'({r["images"]} centre 256x256 crops)' for r in rows) or 'not in the scores file'


def main(argv=None):
    args = parse_args(argv)
    import torch
    import gimsanet_arch  # noqa: F401
    from gimsanet_arch.inference import network, shipped_weights
    from score_race import checkpoints  # this folder: the same reading of a run's checkpoints
    os.chdir(ROOT)
    opt = network.load_yaml(args.opt)
    run = args.run or osp.join('experiments', opt['name'])
    saved = checkpoints(run)
    if not saved:
        print(f'no checkpoints in {run}/models', file=sys.stderr)
        return 2
    iteration = saved[-1][0]
    ckpt = torch.load(osp.join(run, 'models', f'net_g_{iteration}.pth'), map_location='cpu', weights_only=True)
    params = {k: v.float().contiguous() for k, v in ckpt['params_ema' if args.ema else 'params'].items()}
    state = torch.load(osp.join(run, 'training_states', f'{iteration}.state'), map_location='cpu', weights_only=False)
    budget = state.get('gimsanet_cpu_budget') or {}

    os.makedirs(shipped_weights.WEIGHTS_DIR, exist_ok=True)
    target = shipped_weights.weights_path(args.name)
    from gimsanet_arch.training.safetensors_io import save_safetensors_checkpoint
    save_safetensors_checkpoint({'params': params}, target, metadata={'arch': opt['network_g']['type'], 'name': args.name})
    train = opt['datasets']['train']
    record = {
        'network_g': dict(opt['network_g']),
        'noise': f'blind AWGN, sigma uniform in [{train["sigma_range"][0]}, {train["sigma_range"][1]}] (0-255 scale)',
        'trained_on': ('the 44 training photos of PackagePhotos (photo wallpapers from Debian packages, '
                       'docs/data_preparation.md), random 64x64 patches'),
        'iterations': iteration,
        'batch': f'{train["batch_size_per_gpu"]} x {train["gt_size"]}x{train["gt_size"]}',
        'cpu_hours': round(budget.get('spent_s', 0.) / 3600., 3),
        'scale_note': 'a small CPU-only training, far from the paper\'s GPU schedule',
        'option_file': args.opt,
        'weights': 'EMA (decay %s)' % opt['train'].get('ema_decay') if args.ema else 'raw (no EMA)',
        'validation': validation_text(args.scores, args.label),
        'sha256': shipped_weights.sha256(target),
    }
    with open(osp.join(shipped_weights.WEIGHTS_DIR, args.name + '.json'), 'w') as f:
        json.dump(record, f, indent=2)
        f.write('\n')
    os.makedirs('docs/race/logs', exist_ok=True)
    logs = sorted(glob.glob(osp.join(run, 'train_*.log')))
    with open(osp.join('docs/race/logs', opt['name'] + '.log'), 'w') as out:
        for log in logs:
            with open(log) as f:
                out.write(f.read())
    print(f'wrote {target} ({osp.getsize(target) / 1e6:.1f} MB, iter {iteration}, '
          f'{record["cpu_hours"]} CPU-h) and its .json; {len(logs)} log(s) -> docs/race/logs/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
