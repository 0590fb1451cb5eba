"""Reading a run's options once: the command line as BasicSR defines it, the YAML file, and
``--force_yml`` applied.

``basicsr train|test`` reads and checks the options with :func:`read_options`, then runs BasicSR's
pipeline inside :func:`handed_on`. The pipeline asks :func:`parse_options` (installed over
BasicSR's by :mod:`gimsanet_arch.compat`) for them: it completes the handed-on dict the way
BasicSR's ``parse_options`` completes the file it reads (distributed info, seed, run paths) instead
of reading the file and ``--force_yml`` again. Code that calls BasicSR's pipelines directly (no
hand-over) gets the options read from ``sys.argv`` there.
"""
import argparse
import contextlib
import contextvars
import os.path as osp

import yaml


class OptionError(Exception):
    """A problem with the option file or what it points to; the message names the key/file."""


def normalize_local_rank_argv(argv):
    """Rewrite ``--local-rank[=N]`` (PyTorch 2 launchers) to ``--local_rank[=N]`` (BasicSR's spelling)."""
    out = []
    for arg in argv:
        if arg == '--local-rank':
            arg = '--local_rank'
        elif arg.startswith('--local-rank='):
            arg = '--local_rank=' + arg.split('=', 1)[1]
        out.append(arg)
    return out


def argument_parser(prog='basicsr'):
    """BasicSR's run arguments (``basicsr/utils/options.py``), plus the plugin's ``--root``."""
    parser = argparse.ArgumentParser(prog=prog, add_help=False)
    parser.add_argument('-opt', default=None)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument('--force_yml', nargs='+', default=None)
    parser.add_argument('--root', default=None)
    return parser


def load_yaml(path):
    """The option file as an ordered dict; one :class:`OptionError` naming the file (and the line)
    when it is missing or not valid YAML."""
    if not path:
        raise OptionError('no option file given: use -opt path/to/options.yml')
    if not osp.isfile(path):
        raise OptionError(f'option file not found: {path}')
    from basicsr.utils.options import ordered_yaml
    try:
        with open(path) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
        problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
        raise OptionError(f'invalid YAML in {path}{where}: {problem}') from None
    if not isinstance(opt, dict):
        raise OptionError(f'{path} does not hold a mapping of options')
    return opt


def apply_force_yml(opt, entries):
    """Apply ``--force_yml a:b=c`` entries with BasicSR's value rules; an entry naming a key that
    does not exist is an :class:`OptionError` (BasicSR would raise a bare KeyError)."""
    from basicsr.utils.options import _postprocess_yml_value
    for entry in entries or []:
        if '=' not in entry:
            raise OptionError(f'--force_yml entry "{entry}" is not of the form key:subkey=value')
        keys, value = entry.split('=', 1)
        node = opt
        keys = keys.strip().split(':')
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise OptionError(f'--force_yml: option "{":".join(keys)}" does not exist ({key} is missing)')
            node = node[key]
        node[keys[-1]] = _postprocess_yml_value(value.strip())
    return opt


def read_options(argv, prog='basicsr'):
    """``(opt, args)``: the command line parsed, the option file read, ``--force_yml`` applied."""
    args, _ = argument_parser(prog).parse_known_args(normalize_local_rank_argv(argv))
    return apply_force_yml(load_yaml(args.opt), args.force_yml), args


def dist_params(opt):
    """What the process group needs from the options: ``dist_params`` plus ``num_gpu``."""
    params = dict(opt.get('dist_params') or {})
    params['num_gpu'] = opt.get('num_gpu')
    return params


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
    accepted, and the process group comes from the plugin's
    :func:`~gimsanet_arch.training.dist.init_dist` with the options' ``dist_params`` and ``num_gpu``
    (BasicSR's hard-codes NCCL and divides by the GPU count)."""
    import copy
    import random
    import sys

    from basicsr.utils import set_random_seed
    from basicsr.utils.dist_util import get_dist_info
    from gimsanet_arch.training.dist import init_dist

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
