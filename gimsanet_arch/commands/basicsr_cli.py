"""Command line: ``basicsr train|test -opt OPT.yml [...]``.

Imports the plugin (registering its classes and applying the compatibility patches), reads the
options once (``-opt`` with ``--force_yml`` applied) and checks them up front, then hands them on
to BasicSR's own ``train_pipeline`` / ``test_pipeline``. Outputs (``experiments/``, ``results/``,
``tb_logger/``) go under ``--root`` (default: the current working directory).
"""
import os
import os.path as osp
import sys

USAGE = """usage: basicsr {train,test} -opt OPT.yml [--launcher none|pytorch|slurm] [--auto_resume]
                      [--debug] [--force_yml key:sub=value ...] [--root DIR] [--trust-checkpoint]
                      [--allow-random-weights]

  train   run BasicSR's training pipeline with the GIMSANet plugin registered
  test    run BasicSR's test pipeline (writes results/<name>/)
  --root  folder that receives experiments/, results/ and tb_logger/ (default: current directory)
  --trust-checkpoint  load checkpoints and training states with full pickle (they can run code; only
                      for files you trust), as path.trust_checkpoint: true
  --allow-random-weights  test: score a network without path.pretrain_network_g (its random initial weights)
"""
def _check_no_live_run(opt, args, root):
    """Rank 0 (which holds the run lock): stop before BasicSR archives a folder a live run uses."""
    from basicsr.utils.dist_util import get_dist_info
    from gimsanet_arch.training.run_lock import check_free
    if get_dist_info()[0] == 0:
        name = opt['name'] if not args.debug or opt['name'].startswith('debug') else 'debug_' + opt['name']
        check_free(osp.join(os.path.abspath(root), 'experiments', name), name)


def _check_test_weights(opt, allow_random):
    """``basicsr test`` of a network without weights would report the PSNR of random weights."""
    from gimsanet_arch.options import OptionError
    path_opt = opt.get('path') or {}
    for key in opt:
        if key.startswith('network_') and not path_opt.get('pretrain_' + key) and not allow_random:
            raise OptionError(f'path.pretrain_{key} is not set: the test would score random initial weights; give '
                              'the checkpoint, or pass --allow-random-weights')


def run(phase, argv, prog='basicsr'):
    """Run ``phase`` ('train' or 'test') with basicsr-style ``argv``; returns an exit code."""
    from gimsanet_arch.options import normalize_local_rank_argv
    argv = normalize_local_rank_argv(argv)
    if any(a in ('-h', '--help') for a in argv):
        print(USAGE)
        return 0
    from gimsanet_arch.commands.option_checks import check_run, known_errors, one_line
    from gimsanet_arch.options import dist_params, read_options
    from gimsanet_arch.training.run_options import handed_on
    from gimsanet_arch.training.budget import RunEnded
    from gimsanet_arch.training.dist import init_dist
    from gimsanet_arch.training.rank_errors import RankErrors
    from gimsanet_arch.training.resume import ExperimentGuard, resume_after_launcher_restart

    guard = None
    rank_errors = RankErrors(cleanup=lambda: guard is not None and guard.rollback())
    try:
        if phase == 'train':
            argv = resume_after_launcher_restart(argv)
        opt, args = read_options(argv, prog, phase)  # an unknown argument: one line, before anything changes
        root = osp.abspath(args.root or os.getcwd())
        if args.launcher != 'none':  # the process group first: every rank then hears of another's error
            init_dist(args.launcher, **dist_params(opt))
            rank_errors.start()
        check_run(opt, args.opt, resuming=args.auto_resume)
        if phase == 'train':
            _check_no_live_run(opt, args, root)
        rank_errors.barrier()  # no rank creates a run folder while another one's checks fail
        os.makedirs(root, exist_ok=True)
        if phase == 'test':
            _check_test_weights(opt, args.allow_random_weights)
        with handed_on(opt, args):
            if phase == 'train':
                from basicsr.train import train_pipeline
                name = opt['name'] if not args.debug or opt['name'].startswith('debug') else 'debug_' + opt['name']
                guard = ExperimentGuard(root, name)
                train_pipeline(root)
            else:
                from basicsr.test import test_pipeline
                test_pipeline(root)
    except RunEnded as end:  # budget spent or SIGTERM: the state is saved, --auto_resume continues
        print(f'{prog} {phase}: {end}', flush=True)
        return 0
    except known_errors() as err:
        if guard is not None:
            guard.rollback()  # a fresh run that saved nothing leaves nothing behind
        from basicsr.utils.dist_util import get_dist_info
        rank, world_size = get_dist_info()
        where = f' [rank {rank}]' if world_size > 1 else ''
        line = f'{prog} {phase}: error{where}: {one_line(err)}'
        print(line, file=sys.stderr, flush=True)
        rank_errors.report(line)  # the other ranks print the same line and stop too
        return 2
    except Exception:
        if rank_errors.take_posted() is None:  # not another rank's error breaking a collective here
            raise
        return 2
    finally:
        rank_errors.stop()
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
