"""Park long runs at the end of a working session, so the next one (possibly on another machine)
continues them with ``--auto_resume``: keep each run's newest training state and the network
checkpoint of the same iteration, delete the older ones, and list the files to commit.

Stop the runs first (``pkill -TERM -f options/train/GIMSANet/cpu/``: each saves at the end of its
iteration) and score the checkpoints you want on the curve (``score_runs.py --all-checkpoints``):
what this deletes is gone.

    python scripts/cpu_recipe/park_runs.py experiments/train_GIMSANet*_CPU      # prune, print what to add
    python scripts/cpu_recipe/park_runs.py --git-add experiments/train_GIMSANet*_CPU
"""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys


def newest_state(run):
    states = [int(osp.splitext(n)[0]) for n in os.listdir(osp.join(run, 'training_states'))
              if n.endswith('.state') and osp.splitext(n)[0].isdigit()]
    return max(states) if states else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+', help='run folders (experiments/<name>)')
    p.add_argument('--git-add', action='store_true', help='git add -f the kept files and the run logs')
    args = p.parse_args(argv)
    keep_all = []
    for run in args.runs:
        if not osp.isdir(osp.join(run, 'training_states')):
            print(f'skip {run}: no training_states/')
            continue
        it = newest_state(run)
        if it is None or not osp.isfile(osp.join(run, 'models', f'net_g_{it}.pth')):
            print(f'skip {run}: no training state with its network checkpoint')
            continue
        keep = {osp.join(run, 'training_states', f'{it}.state'), osp.join(run, 'models', f'net_g_{it}.pth')}
        removed = 0
        for path in glob.glob(osp.join(run, 'training_states', '*')) + glob.glob(osp.join(run, 'models', '*')):
            if path not in keep:
                os.remove(path)
                removed += 1
        logs = sorted(glob.glob(osp.join(run, '*.log'))) + sorted(glob.glob(osp.join(run, '*.yml')))
        print(f'{run}: kept iteration {it}, removed {removed} older file(s)')
        keep_all += sorted(keep) + logs
    if args.git_add and keep_all:
        subprocess.run(['git', 'add', '-A', '-f', '--', *[osp.dirname(k) for k in keep_all if k.endswith(('.state', '.pth'))]],
                       check=True)
        subprocess.run(['git', 'add', '-f', '--', *keep_all], check=True)
    for path in keep_all:
        print(path)


if __name__ == '__main__':
    sys.exit(main())
