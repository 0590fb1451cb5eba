"""A run's options on their way into BasicSR's pipeline.

``basicsr train|test`` reads and checks the options (:func:`gimsanet_arch.options.read_options`),
then runs BasicSR's pipeline inside :func:`handed_on`. The pipeline asks :func:`parse_options`
(installed over BasicSR's by :mod:`gimsanet_arch.compat`) for them: it completes the handed-on dict
the way BasicSR's ``parse_options`` completes the file it reads (distributed info, seed, run paths)
instead of reading the file and ``--force_yml`` again. Code that calls BasicSR's pipelines directly
(no hand-over) gets the options read from ``sys.argv`` there.
"""
import contextlib
import contextvars
import os.path as osp

from gimsanet_arch.options import dist_params, read_options
from gimsanet_arch.training.dist import init_dist


# The options of the run in progress, from the CLI to BasicSR's pipeline, which takes only a root path
# (a context variable: scoped to the ``with handed_on(...)`` block, not a module-level setting).
_HANDED_ON = contextvars.ContextVar('gimsanet_handed_on_options', default=None)


@contextlib.contextmanager
def handed_on(opt, args):
    """Within this block :func:`parse_options` returns ``opt`` (already read, forced and checked)
    completed, and ``args`` (the parsed command line)."""
    token = _HANDED_ON.set((opt, args))
    try:
        yield opt
    finally:
        _HANDED_ON.reset(token)


def parse_options(root_path, is_train=True):
    """``basicsr.utils.options.parse_options`` for the plugin: ``(opt, args)`` with what BasicSR
    adds to the file's options (``dist``, ``rank``, ``world_size``, the seed set, ``auto_resume``,
    ``is_train``, the debug name, ``num_gpu: auto``, dataset phases, expanded paths, and the run's
    folders under ``root_path``).

    Differences from BasicSR's, on purpose: the options are read once (handed on by the CLI, or
    read here with ``--force_yml`` applied and checked before anything else), ``--local-rank`` is
    accepted, ``path.trust_checkpoint`` moves to the top level (``trust_checkpoint``), and the process
    group comes from the plugin's
    :func:`~gimsanet_arch.training.dist.init_dist` with the options' ``dist_params`` and ``num_gpu``
    (BasicSR's hard-codes NCCL and divides by the GPU count)."""
    import copy
    import random
    import sys

    from basicsr.utils import set_random_seed
    from basicsr.utils.dist_util import get_dist_info

    handed = _HANDED_ON.get()
    if handed is None:
        opt, args = read_options(sys.argv[1:])
    else:
        opt, args = copy.deepcopy(handed[0]), handed[1]
    opt['dist'] = args.launcher != 'none'
    if opt['dist']:
        init_dist(args.launcher, **dist_params(opt))  # no-op when the CLI started the group
    else:
        print('Disable distributed.', flush=True)
    opt['rank'], opt['world_size'] = get_dist_info()
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)
    set_random_seed(opt['manual_seed'] + opt['rank'])
    opt['auto_resume'] = args.auto_resume
    opt['is_train'] = is_train
    if args.debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    if opt.get('num_gpu') == 'auto':
        import torch
        opt['num_gpu'] = torch.cuda.device_count()
    for phase, dataset in (opt.get('datasets') or {}).items():
        dataset['phase'] = phase.split('_')[0]  # val_1, val_2 -> val
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for key in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(key) is not None:
                dataset[key] = osp.expanduser(dataset[key])
    paths = opt.setdefault('path', {})
    for key, value in paths.items():
        if value is not None and ('resume_state' in key or 'pretrain_network' in key):
            paths[key] = osp.expanduser(value)
    if 'trust_checkpoint' in paths:
        # BasicSR's make_exp_dirs makes a folder of every path value it does not know (a bool here: a
        # TypeError); the run reads the flag at the top level instead (checkpoint.trusted)
        opt['trust_checkpoint'] = bool(paths.pop('trust_checkpoint'))
    _add_run_folders(opt, root_path, is_train)
    return opt, args


def _add_run_folders(opt, root_path, is_train):
    """``experiments/<name>/...`` for training (and BasicSR's debug settings), ``results/<name>/``
    for testing, as BasicSR lays them out."""
    paths = opt['path']
    if is_train:
        root = osp.join(root_path, 'experiments', opt['name'])
        paths.update(experiments_root=root, models=osp.join(root, 'models'),
                     training_states=osp.join(root, 'training_states'), log=root,
                     visualization=osp.join(root, 'visualization'))
        if 'debug' in opt['name']:
            if 'val' in opt:
                opt['val']['val_freq'] = 8
            opt['logger']['print_freq'] = 1
            opt['logger']['save_checkpoint_freq'] = 8
    else:
        root = osp.join(root_path, 'results', opt['name'])
        paths.update(results_root=root, log=root, visualization=osp.join(root, 'visualization'))
