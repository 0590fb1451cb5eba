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


def argument_parser(prog='basicsr', phase=None):
    """BasicSR's run arguments (``basicsr/utils/options.py``), plus the plugin's ``--root``,
    ``--trust-checkpoint`` and, for ``phase`` test (or unknown), ``--allow-random-weights``."""
    parser = argparse.ArgumentParser(prog=prog, add_help=False)
    parser.add_argument('-opt', default=None)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument('--force_yml', nargs='+', default=None)
    parser.add_argument('--root', default=None)
    parser.add_argument('--trust-checkpoint', action='store_true')  # = path.trust_checkpoint: true
    if phase in (None, 'test'):
        parser.add_argument('--allow-random-weights', action='store_true')
    return parser


def unknown_argument_error(parser, unknown):
    """One line for the first argument ``parser`` does not know, with the closest known one:
    BasicSR's ``parse_known_args`` dropped them silently (``--auto-resume``, spelt as the plugin's
    own commands spell flags, restarted the run from iteration 0)."""
    import difflib
    arg = unknown[0]
    if not arg.startswith('-'):
        hint = f' (did you mean -opt {arg}?)' if arg.endswith(('.yml', '.yaml')) else ''
        return OptionError(f'unexpected argument {arg}{hint}')
    flag = arg.split('=', 1)[0]
    known = sorted(s for s in parser._option_string_actions if s.startswith('-'))
    respelt = [k for k in known if k.replace('_', '-') == flag.replace('_', '-')]  # hyphen vs underscore
    close = respelt or difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
    hint = f' (did you mean {close[0]}?)' if close else f' (known: {", ".join(known)})'
    return OptionError(f'unknown argument {flag}{hint}')


class DuplicateKey(yaml.YAMLError):
    """A mapping that gives one key twice (1-based ``lines``)."""

    def __init__(self, key, lines):
        super().__init__(f'{key} given twice, lines {lines}')
        self.key, self.lines = key, lines


_MERGE = 'tag:yaml.org,2002:merge'


def _option_loader():
    """BasicSR's ordered-dict YAML loader (``ordered_yaml``), made strict: a key given twice in one
    mapping is a :class:`DuplicateKey` (PyYAML keeps the last one silently), and YAML's merge key
    ``<<: *anchor`` is merged (the mapping's own keys win), which BasicSR's loader cannot construct.
    Built on the safe loader: an option file holds data, never Python objects to construct."""
    from collections import OrderedDict

    class OptionLoader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):
        pass

    def ordered_mapping(loader, node):
        seen = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                if not isinstance(value_node, (yaml.MappingNode, yaml.SequenceNode)):
                    raise yaml.constructor.ConstructorError(
                        None, None, '"<<" (a YAML merge key) must name a mapping (<<: *anchor) or a list of them',
                        key_node.start_mark)
                continue
            key, line = loader.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKey(key, (seen[key], line))
                seen[key] = line
            except TypeError:  # a list or mapping as a key: one line, not OrderedDict's traceback
                raise yaml.constructor.ConstructorError(None, None, f'a key must be a plain value, got {key!r}',
                                                        key_node.start_mark) from None
        loader.flatten_mapping(node)
        return OrderedDict(loader.construct_pairs(node, deep=True))

    OptionLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, ordered_mapping)
    return OptionLoader


def load_yaml(path):
    """The option file as an ordered dict; one :class:`OptionError` naming the file (and the line)
    when it is missing or not valid YAML."""
    if not path:
        raise OptionError('no option file given: use -opt path/to/options.yml')
    if not osp.isfile(path):
        raise OptionError(f'option file not found: {path}')
    try:
        with open(path) as f:
            opt = yaml.load(f, Loader=_option_loader())
    except DuplicateKey as err:
        raise OptionError(f'{path}: option "{err.key}" is given twice (lines {err.lines[0]} and {err.lines[1]}); '
                          'YAML would silently keep the second: keep one') from None
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


def read_options(argv, prog='basicsr', phase=None):
    """``(opt, args)``: the command line parsed (an unknown argument is an :class:`OptionError`), the
    option file read, ``--force_yml`` applied, ``--trust-checkpoint`` set as ``path.trust_checkpoint``
    (which every load of a checkpoint or training state reads)."""
    parser = argument_parser(prog, phase)
    args, unknown = parser.parse_known_args(normalize_local_rank_argv(argv))
    if unknown:
        raise unknown_argument_error(parser, unknown)
    opt = apply_force_yml(load_yaml(args.opt), args.force_yml)
    if args.trust_checkpoint:
        if not isinstance(opt.get('path'), dict):
            opt['path'] = {}
        opt['path']['trust_checkpoint'] = True
    return opt, args


def dist_params(opt):
    """What the process group needs from the options: ``dist_params`` plus ``num_gpu``."""
    params = dict(opt.get('dist_params') or {})
    params['num_gpu'] = opt.get('num_gpu')
    return params
