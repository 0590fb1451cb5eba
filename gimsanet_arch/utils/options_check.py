"""Up-front checks of a BasicSR option file, so the errors people actually meet are one clear
line instead of a traceback from deep inside BasicSR."""
import difflib
import os.path as osp

import yaml


class OptionError(Exception):
    """A problem with the option file or what it points to; the message names the key/file."""


def load_yaml(path):
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
    """Apply ``--force_yml a:b=c`` the way basicsr does, so checks see the final values."""
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


def _check_type(section, type_name, registry, registry_name):
    if type_name is None:
        raise OptionError(f'{section}: missing "type" ({registry_name} names: {", ".join(sorted(registry.keys()))})')
    if type_name not in registry:
        names = sorted(registry.keys())
        close = difflib.get_close_matches(str(type_name), names, n=1, cutoff=0.5)
        hint = f' Did you mean "{close[0]}"?' if close else ''
        raise OptionError(f'{section}: unknown type "{type_name}" in {registry_name}.{hint} '
                          f'Registered: {", ".join(names)}')


def check_types(opt):
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    _check_type('model_type', opt.get('model_type'), MODEL_REGISTRY, 'MODEL_REGISTRY')
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, dict):
            _check_type(f'{key}.type', value.get('type'), ARCH_REGISTRY, 'ARCH_REGISTRY')
    for phase, dataset in (opt.get('datasets') or {}).items():
        _check_type(f'datasets.{phase}.type', dataset.get('type'), DATASET_REGISTRY, 'DATASET_REGISTRY')
    for key, value in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(value, dict):
            _check_type(f'train.{key}.type', value.get('type'), LOSS_REGISTRY, 'LOSS_REGISTRY')
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        _check_type(f'val.metrics.{name}.type', metric.get('type'), METRIC_REGISTRY, 'METRIC_REGISTRY')


def _check_data_path(section, key, path, backend):
    if path is None or str(path).lower() == 'none':  # Restormer's AWGN files: ``dataroot_lq: none``
        return
    path = osp.expanduser(str(path))
    if backend == 'lmdb':
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise OptionError(f'{section}.{key}: LMDB not found: {path} (no data.mdb inside; '
                              'run the data preparation script for this dataset first)')
    elif not osp.exists(path):
        raise OptionError(f'{section}.{key}: dataset path not found: {path}')


def check_data_paths(opt):
    for phase, dataset in (opt.get('datasets') or {}).items():
        backend = (dataset.get('io_backend') or {}).get('type', 'disk')
        section = f'datasets.{phase}'
        for key, value in dataset.items():
            if key.startswith('dataroot'):
                _check_data_path(section, key, value, backend)
        meta = dataset.get('meta_info_file') or dataset.get('meta_info')
        if isinstance(meta, str) and not osp.isfile(osp.expanduser(meta)):
            raise OptionError(f'{section}.meta_info_file: file not found: {meta}')


def check_pretrain_paths(opt):
    for key, value in (opt.get('path') or {}).items():
        if key.startswith('pretrain_network') and value and not osp.isfile(osp.expanduser(str(value))):
            raise OptionError(f'path.{key}: checkpoint not found: {value}')


def check_options(path, force_yml=None):
    """Load ``path``, apply ``--force_yml`` and check it; returns the option dict."""
    opt = apply_force_yml(load_yaml(path), force_yml)
    for key in ('name', 'model_type', 'datasets'):
        if key not in opt:
            raise OptionError(f'{path}: required option "{key}" is missing')
    check_types(opt)
    check_data_paths(opt)
    check_pretrain_paths(opt)
    return opt
