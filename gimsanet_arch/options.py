"""Reading a run's options once: the command line as BasicSR defines it, the YAML file, and
``--force_yml`` applied (:func:`read_options`). How they reach BasicSR's pipeline:
:mod:`gimsanet_arch.training.run_options`.
"""
import argparse
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
