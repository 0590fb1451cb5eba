"""Command line: ``basicsr train|test -opt OPT.yml [...]``.

Imports the plugin (registering its classes and applying the compatibility shims), checks the
option file up front, then hands over to BasicSR's own ``train_pipeline`` / ``test_pipeline``.
Outputs (``experiments/``, ``results/``, ``tb_logger/``) go under ``--root`` (default: the
current working directory).
"""
import argparse
import os
import os.path as osp
import sys

USAGE = """usage: basicsr {train,test} -opt OPT.yml [--launcher none|pytorch|slurm] [--auto_resume]
                      [--debug] [--force_yml key:sub=value ...] [--root DIR]

  train   run BasicSR's training pipeline with the GIMSANet plugin registered
  test    run BasicSR's test pipeline (writes results/<name>/)
  --root  folder that receives experiments/, results/ and tb_logger/ (default: current directory)
"""


def _split_plugin_args(argv):
    """Take out the arguments basicsr does not know (``--root``); return (root, rest)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--root', default=None)
    known, rest = parser.parse_known_args(argv)
    return known.root, rest


def _peek(argv, flag, nargs=1):
    if flag not in argv:
        return None
    i = argv.index(flag)
    if nargs == 1:
        return argv[i + 1] if i + 1 < len(argv) else None
    values = []
    for arg in argv[i + 1:]:
        if arg.startswith('--'):
            break
        values.append(arg)
    return values


def run(phase, argv, prog='basicsr'):
    """Run ``phase`` ('train' or 'test') with basicsr-style ``argv``; returns an exit code."""
    root, rest = _split_plugin_args(argv)
    from gimsanet_arch.compat import normalize_local_rank_argv
    rest = normalize_local_rank_argv(rest)
    if any(a in ('-h', '--help') for a in rest):
        print(USAGE)
        return 0
    import gimsanet_arch  # noqa: F401  (shims + registration)
    from gimsanet_arch.utils.options_check import check_run, known_errors, one_line
    from gimsanet_arch.utils.resume import ExperimentGuard

    root = osp.abspath(root or os.getcwd())
    guard = None
    try:
        resuming = '--auto_resume' in rest
        opt = check_run(_peek(rest, '-opt'), _peek(rest, '--force_yml', nargs='+'), resuming=resuming)
        os.makedirs(root, exist_ok=True)
        sys.argv = [f'{prog} {phase}'] + rest
        if phase == 'train':
            from basicsr.train import train_pipeline
            name = opt['name'] if '--debug' not in rest or opt['name'].startswith('debug') else 'debug_' + opt['name']
            guard = ExperimentGuard(root, name)
            train_pipeline(root)
        else:
            from basicsr.test import test_pipeline
            test_pipeline(root)
    except known_errors() as err:
        if guard is not None:
            guard.rollback()  # a fresh run that saved nothing leaves nothing behind
        from basicsr.utils.dist_util import get_dist_info
        rank, world_size = get_dist_info()
        where = f' [rank {rank}]' if world_size > 1 else ''
        print(f'{prog} {phase}: error{where}: {one_line(err)}', file=sys.stderr, flush=True)
        return 2
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    while argv and argv[0].startswith(('--local-rank', '--local_rank')):  # torch.distributed.launch puts it first
        n = 1 if '=' in argv[0] else 2
        argv = argv[n:] + argv[:n]
    if not argv or argv[0] not in ('train', 'test'):
        print(USAGE, file=sys.stderr if argv and argv[0] not in ('-h', '--help') else sys.stdout)
        return 0 if argv and argv[0] in ('-h', '--help') else 2
    return run(argv[0], argv[1:])


if __name__ == '__main__':
    sys.exit(main())
