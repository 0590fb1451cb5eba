"""Reading a run's options once: the command line as BasicSR defines it, the YAML file, and
``--force_yml`` applied, then handed on to BasicSR's own ``parse_options``.

``basicsr train|test`` reads and checks the options with :func:`read_options`, then runs BasicSR's
pipeline inside :func:`handed_on`; the ``parse_options`` that :mod:`gimsanet_arch.compat` installs
takes the handed-on dict instead of parsing the file and ``--force_yml`` again. Code that calls
BasicSR's pipelines directly (no hand-over) gets the options read by :func:`read_options` there.
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


_HANDED_ON = contextvars.ContextVar('gimsanet_handed_on_options', default=None)


@contextlib.contextmanager
def handed_on(opt):
    """Within this block BasicSR's ``parse_options`` uses ``opt`` (already read and forced)."""
    token = _HANDED_ON.set(opt)
    try:
        yield opt
    finally:
        _HANDED_ON.reset(token)


def handed_on_options():
    """The options handed on by :func:`handed_on`, or None outside such a block."""
    return _HANDED_ON.get()


def _without_force_yml(argv):
    """``argv`` less ``--force_yml`` and its entries (they are applied already)."""
    out, skipping = [], False
    for arg in argv:
        if arg == '--force_yml':
            skipping = True
            continue
        if skipping and not arg.startswith('-'):
            continue
        skipping = False
        out.append(arg)
    return out


def parse_options_taking_handed_on(original, init_dist):
    """Replacement for ``basicsr.utils.options.parse_options`` (installed by compat's table).

    BasicSR's parser rejects ``--local-rank`` (PyTorch 2 launchers), calls ``init_dist`` without the
    options' ``dist_params`` / ``num_gpu`` for the pytorch launcher, and applies ``--force_yml``
    only after the process group exists. This runs BasicSR's own ``parse_options`` on the options
    read once (handed on, or read here): its YAML read returns them, ``--force_yml`` is not applied
    a second time, and ``init_dist`` (the plugin's, passed in) gets the options' backend and GPU count.
    """
    import copy
    import functools
    import sys
    import types

    def parse_options(root_path, is_train=True):
        import basicsr.utils.options as options_module
        sys.argv[:] = normalize_local_rank_argv(sys.argv)
        opt = handed_on_options()
        if opt is None:
            opt, _ = read_options(sys.argv[1:])
        params = dist_params(opt)

        class _YamlGivingOptions(types.ModuleType):
            def __getattr__(self, name):
                return getattr(yaml, name)

        prepared_yaml = _YamlGivingOptions('yaml')
        prepared_yaml.load = lambda *args, **kwargs: copy.deepcopy(opt)

        @functools.wraps(init_dist)
        def init_dist_with_options(launcher, **kwargs):
            kwargs.setdefault('backend', params.get('backend'))
            kwargs.setdefault('num_gpu', params.get('num_gpu'))
            return init_dist(launcher, **kwargs)

        argv = list(sys.argv)
        saved = options_module.yaml, options_module.init_dist
        sys.argv[:] = _without_force_yml(argv)
        options_module.yaml, options_module.init_dist = prepared_yaml, init_dist_with_options
        try:
            return original(root_path, is_train)
        finally:
            options_module.yaml, options_module.init_dist = saved
            sys.argv[:] = argv  # BasicSR copies the full command line into the run's option file

    return parse_options
