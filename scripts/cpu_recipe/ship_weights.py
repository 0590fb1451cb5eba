"""Turn a CPU-recipe run (docs/cpu_recipe.md) into shipped weights (gimsanet_arch/weights/).

    python scripts/cpu_recipe/ship_weights.py --run experiments/train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU \\
        --name GIMSANet-NoGrad_BlindColor_CBSD432 [--iteration N] [--key params_ema]

Writes ``<name>.safetensors`` (BasicSR's ``params`` group, fp32) and ``<name>.json`` (network options,
data, noise, iterations, CPU-hours, option file, the hold-out score of that checkpoint from
``--holdout-scores``, its SHA-256 and, scored once it is chosen, CBSD68 or BSD68 PSNR/SSIM at σ 15/25/50),
and copies the run's training log(s) to docs/cpu_recipe/logs/. Both files are built and scored in a
scratch folder and moved into place together at the end: an interrupted ship leaves the old pair.
Which checkpoint and which weights (raw or EMA) ship is chosen on the hold-out split, never on a test
set: by default the newest checkpoint, with the key that scored best on the hold-out at σ 25.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import shutil
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAINED_ON = {
    'CBSD432': 'CBSD432 (BSDS500 minus the 68 CBSD68 test images) less its 32-image hold-out '
               '(gimsanet_prep/splits/CBSD432_val.txt): 400 colour images',
    'BSD400': 'BSD400 (DnCNN\'s Train400) less its 32-image hold-out (gimsanet_prep/splits/BSD400_val.txt): '
              '368 gray 180x180 images',
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run', required=True, help='the run folder (experiments/<name>)')
    p.add_argument('--name', required=True, help='name of the shipped files (gimsanet_arch/weights/<name>.*)')
    p.add_argument('--iteration', type=int, default=None, help='checkpoint to ship (default: the newest)')
    p.add_argument('--key', choices=['params', 'params_ema'], default=None,
                   help='weights to ship (default: the better of the two on the hold-out at sigma 25)')
    p.add_argument('--holdout-scores', default='docs/cpu_recipe/shipped_holdout.csv',
                   help='score_runs.py CSV of the run on the hold-out (read, and written for missing rows)')
    p.add_argument('--test-scores', default='docs/results/scores.csv',
                   help="results_table.py's cache of CBSD68/BSD68 scores (read, and written for missing rows)")
    p.add_argument('--weights-dir', default=None, help='where the pair goes (default: the package weights folder)')
    p.add_argument('--logs-dir', default='docs/cpu_recipe/logs', help="where the run's training logs are copied")
    return p.parse_args(argv)


def write_record(path, record):
    with open(path, 'w') as f:
        json.dump(record, f, indent=2)
        f.write('\n')


def option_file(run):
    """The run's option file in options/ (what a user would rerun), else the copy in the run folder."""
    found = sorted(glob.glob(osp.join('options', '**', osp.basename(run) + '.yml'), recursive=True))
    found = found or sorted(glob.glob(osp.join(run, '*.yml')))
    if not found:
        raise SystemExit(f'error: {run}: no option file (*.yml) in the run folder')
    return found[0]


def holdout_rows(path, run, iteration):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [r for r in csv.DictReader(f) if r['run'] == osp.basename(run) and int(r['iteration']) == iteration]


def make_record(opt, opt_path, key, iteration, rows, budget, sha):
    """The JSON record of shipped weights, without the test scores (added once they are scored)."""
    train = opt['datasets']['train']
    data = next((v for k, v in TRAINED_ON.items() if k in train['dataroot_gt']), train['dataroot_gt'])
    holdout = '; '.join(f'sigma {float(r["sigma"]):g}: PSNR {float(r["psnr"]):.2f} dB, SSIM {float(r["ssim"]):.4f}'
                        for r in sorted(rows, key=lambda r: float(r['sigma'])) if r['weights'] == key)
    return {
        'network_g': dict(opt['network_g']),
        'noise': f'blind AWGN, sigma uniform in [{train["sigma_range"][0]}, {train["sigma_range"][1]}] (0-255 scale)',
        'trained_on': f'{data}, random {train["gt_size"]}x{train["gt_size"]} patches with flips/rotations',
        'iterations': iteration,
        'batch': f'{train["batch_size_per_gpu"]} x {train["gt_size"]}x{train["gt_size"]}',
        'cpu_hours': round(budget.get('spent_s', 0.) / 3600., 3),
        'recipe': 'docs/cpu_recipe.md: Adam, cosine over the CPU budget, bf16 autocast, one thread',
        'option_file': osp.relpath(opt_path, ROOT),
        'weights': f'EMA (decay {opt["train"].get("ema_decay")})' if key == 'params_ema' else 'raw (no EMA)',
        'validation': f'hold-out ({rows[0]["images"]} images, seeded noise): {holdout}',
        'sha256': sha,
    }


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    import torch
    import gimsanet_arch  # noqa: F401
    from gimsanet_arch.inference import network, shipped_weights
    from gimsanet_arch.training.resume import numbered_checkpoints
    from gimsanet_arch.training.safe_state import load_state_file
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

    rows = holdout_rows(args.holdout_scores, run, iteration)
    if not rows:  # score this checkpoint on the hold-out (both keys, sigma 15/25/50)
        import subprocess
        subprocess.run([sys.executable, 'scripts/cpu_recipe/score_runs.py', '--runs', run, '--out', args.holdout_scores,
                        '--iteration', str(iteration),
                        '--data', opt['datasets']['train']['dataroot_gt'].replace('train_minus_val', 'val')],
                       check=True)
        rows = holdout_rows(args.holdout_scores, run, iteration)
    at_25 = {r['weights']: float(r['psnr']) for r in rows if float(r['sigma']) == 25}
    key = args.key or max(at_25, key=at_25.get)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    params = {k: v.float().contiguous() for k, v in ckpt[key].items()}
    state_path = osp.join(run, 'training_states', f'{iteration}.state')
    budget = {}
    if osp.isfile(state_path):
        budget = load_state_file(state_path).get('gimsanet_cpu_budget') or {}  # weights-only

    weights_dir = args.weights_dir or shipped_weights.WEIGHTS_DIR
    os.makedirs(weights_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix='.ship-', dir=weights_dir)
    try:
        staged = osp.join(scratch, args.name + '.safetensors')
        save_safetensors_checkpoint({'params': params}, staged,
                                    metadata={'arch': opt['network_g']['type'], 'name': args.name})
        record = make_record(opt, opt_path, key, iteration, rows, budget, shipped_weights.sha256(staged))
        # the test set is scored only now, after the checkpoint and key were chosen on the hold-out; the
        # rows also go to the README table's cache
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        from results_table import Scorer
        tested = Scorer(args.test_scores).network(staged, method=args.name, cpu_h=record['cpu_hours'])
        record['test'] = {f'{r["data"]} sigma {float(r["sigma"]):g}': {'psnr': round(float(r['psnr']), 2),
                                                                      'ssim': round(float(r['ssim']), 4)}
                          for r in sorted(tested, key=lambda r: float(r['sigma']))}
        record['test_protocol'] = ('seeded AWGN (seed 0 per image), not clipped; uint8 PSNR/SSIM on all channels, '
                                   'no border crop; fp32 (scripts/cpu_recipe/results_table.py)')
        write_record(osp.join(scratch, args.name + '.json'), record)
        target = osp.join(weights_dir, args.name + '.safetensors')
        os.replace(staged, target)
        os.replace(osp.join(scratch, args.name + '.json'), osp.join(weights_dir, args.name + '.json'))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logs = sorted(glob.glob(osp.join(run, 'train_*.log')))
    os.makedirs(args.logs_dir, exist_ok=True)
    with open(osp.join(args.logs_dir, osp.basename(run) + '.log'), 'w') as out:
        for log in logs:
            with open(log) as f:
                out.write(f.read())
    print(f'wrote {target} ({osp.getsize(target) / 1e6:.1f} MB, iter {iteration}, {key}, '
          f'{record["cpu_hours"]} CPU-h) and its .json; {len(logs)} log(s) -> {args.logs_dir}/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
