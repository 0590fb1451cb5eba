"""Up-front checks of a run's options (already read once by :mod:`gimsanet_arch.options`), so
the errors people actually meet are one clear line instead of a traceback from deep inside BasicSR."""
import difflib
import os.path as osp

from gimsanet_arch.commands.option_values import check_numbers
from gimsanet_arch.options import OptionError
from gimsanet_prep.images import ImageReadError, sniff_image_file


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
        from gimsanet_prep.lmdb_writer import truncation_problem
        truncated = truncation_problem(path)
        if truncated:
            raise OptionError(f'{section}.{key}: {truncated}')
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


def check_values(opt):
    """Option values the plugin's models read with a fixed set of choices, and every number a run
    depends on (:mod:`gimsanet_arch.commands.option_values`)."""
    from gimsanet_arch.inference.engine import DTYPE_CHOICES
    dtype = (opt.get('val') or {}).get('dtype')
    if dtype is not None and str(dtype).lower() not in DTYPE_CHOICES:
        raise OptionError(f'val.dtype: unknown value {dtype!r}; expected one of {", ".join(DTYPE_CHOICES)}')
    fmt = (opt.get('logger') or {}).get('save_checkpoint_format')
    if fmt is not None and fmt not in ('pth', 'safetensors', 'both'):
        raise OptionError(f'logger.save_checkpoint_format: unknown value {fmt!r}; expected pth, safetensors or both')
    check_numbers(opt)


def fill_defaults(opt):
    """Keys BasicSR reads with ``[]`` although an obvious default exists (a missing one would be a
    KeyError traceback deep in its loop): ``val.save_img`` (false)."""
    if isinstance(opt.get('val'), dict):
        opt['val'].setdefault('save_img', False)


def fix_worker_options(opt):
    """``persistent_workers: true`` with ``num_worker_per_gpu: 0`` (what a CPU user sets) makes
    torch's DataLoader raise; the option means nothing without workers, so it is turned off with
    a warning."""
    import sys
    for phase, dataset in (opt.get('datasets') or {}).items():
        if dataset.get('persistent_workers') and dataset.get('num_worker_per_gpu', 0) == 0:
            print(f'warning: datasets.{phase}.persistent_workers is ignored: num_worker_per_gpu is 0 (no workers)',
                  file=sys.stderr)
            dataset['persistent_workers'] = False


# the longest run name whose folder can still be archived: BasicSR renames experiments/<name> to
# <name>_archived_<YYYYmmdd_HHMMSS> (25 bytes more), --debug prefixes debug_, and names are <= 255 bytes
MAX_NAME_BYTES = 255 - len('_archived_20240101_000000') - len('debug_')


def check_run_name(opt):
    """``name`` becomes ``experiments/<name>`` (an existing one is archived, i.e. renamed, first),
    ``tb_logger/<name>`` and ``results/<name>``: it must be one plain folder name. ``../data``
    renamed the user's ``data/`` folder, ``../../escape`` trained outside ``experiments/``, ``a/b``
    and an empty name ended in tracebacks. A whole number (``name: 2024``) is taken as text."""
    name = opt['name']
    if isinstance(name, int) and not isinstance(name, bool):
        name = opt['name'] = str(name)
    if not isinstance(name, str):
        problem = f'is a {type(name).__name__}, not a folder name'
    elif not name.strip():
        problem = 'is empty'
    elif name in ('.', '..') or osp.isabs(name) or any(c in name for c in ('/', '\\', '\0')):
        problem = 'is not one folder name (no path separators, ".." or absolute paths)'
    elif len(name.encode('utf-8', 'surrogateescape')) > MAX_NAME_BYTES:
        problem = f'is longer than {MAX_NAME_BYTES} bytes (its archived folder name would be too long)'
    else:
        return
    raise OptionError(f'name: {name!r} {problem}: a run name is one plain folder name, used as '
                      'experiments/<name> and results/<name>')


def check_options(opt, path):
    """Required keys, the run name, registered types, option values, data and checkpoint paths of
    the option dict read from ``path``."""
    for key in ('name', 'model_type', 'datasets'):
        if key not in opt:
            raise OptionError(f'{path}: required option "{key}" is missing')
    check_run_name(opt)  # before anything below can touch the disk under that name
    check_section_keys(opt)  # first: a misspelt path key is reported as that, not as a missing file
    check_types(opt)
    check_values(opt)
    fill_defaults(opt)
    fix_worker_options(opt)
    check_data_paths(opt)
    check_pretrain_paths(opt)
    return opt


# ----------------------------------------------------------------------------- unknown option keys
# Keys BasicSR itself reads in the sections checked below (basicsr 1.4.2: train.py, data/__init__.py,
# models/base_model.py, models/sr_model.py, utils/options.py). The plugin's classes declare their own
# (OPTIONS of a dataset; TRAIN_OPTIONS, VAL_OPTIONS, TRAIN_DATASET_OPTIONS of a model), each key with a
# one-line description.
BASICSR_DATASET_KEYS = {
    'name', 'type', 'phase', 'scale', 'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'filename_tmpl',
    'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio', 'prefetch_mode', 'pin_memory',
    'persistent_workers', 'use_shuffle', 'num_prefetch_queue', 'gt_size', 'use_hflip', 'use_rot', 'color',
}
BASICSR_TRAIN_KEYS = {'ema_decay', 'optim_g', 'scheduler', 'total_iter', 'warmup_iter'}
BASICSR_VAL_KEYS = {'val_freq', 'save_img', 'suffix', 'metrics', 'pbar',
                    'rgb2bgr', 'use_image', 'max_minibatch'}  # the last three: Restormer/NAFNet option files


def declared_options(cls, attribute):
    """``{key: description}`` that ``cls`` and its plugin base classes declare in ``attribute``."""
    declared = {}
    for klass in reversed(cls.__mro__):
        if _is_plugin(klass):
            declared.update(vars(klass).get(attribute) or {})
    return declared


def _is_plugin(cls):
    return getattr(cls, '__module__', '').startswith('gimsanet_arch.')


def _unknown_key_error(section, key, known):
    import difflib
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f' Did you mean "{close[0]}"?' if close else ''
    return OptionError(f'{section}: unknown option "{key}" (BasicSR would silently ignore it).{hint} '
                       f'Known: {", ".join(sorted(known))}. Set strict_options: false to only warn.')


def _report_unknown(opt, section, keys, known):
    import warnings
    for key in keys:
        if key not in known:
            err = _unknown_key_error(section, key, known)
            if opt.get('strict_options', True):
                raise err
            warnings.warn(str(err))


# keys BasicSR (and the plugin) read at the top level and in path / logger / dist_params
TOP_LEVEL_KEYS = {'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'path', 'train', 'val', 'logger',
                  'dist_params', 'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path',
                  'find_unused_parameters', 'broadcast_buffers', 'strict_options'}
PATH_KEYS = {'resume_state', 'ignore_resume_networks', 'experiments_root', 'results_root', 'models',
             'training_states', 'log', 'visualization', 'root', 'trust_checkpoint', 'param_key'}
PATH_NETWORK_PREFIXES = ('pretrain_network_', 'strict_load_', 'param_key_')
LOGGER_KEYS = {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb', 'save_checkpoint_format'}
DIST_KEYS = {'backend', 'port', 'timeout'}


def check_section_keys(opt):
    """Misspelt keys at the top level and in ``path``, ``logger`` and ``dist_params``: BasicSR
    ignores them silently (``path.pretrain_network`` would train from scratch)."""
    networks = {k[len('network_'):] for k in opt if k.startswith('network_')}
    top = [k for k in opt if k not in TOP_LEVEL_KEYS and not k.startswith('network_')]
    _report_unknown(opt, 'top level', top, TOP_LEVEL_KEYS | {f'network_{n}' for n in networks or {'g'}})
    path_known = PATH_KEYS | {p + n for p in PATH_NETWORK_PREFIXES for n in networks or {'g'}}
    _report_unknown(opt, 'path', opt.get('path') or {}, path_known)
    _report_unknown(opt, 'logger', opt.get('logger') or {}, LOGGER_KEYS)
    _report_unknown(opt, 'dist_params', opt.get('dist_params') or {}, DIST_KEYS)


def check_option_keys(opt):
    """Misspelt keys in the plugin's own sections: its datasets' options, ``train:`` / ``val:`` of
    its models, and the keyword arguments of its networks (against the constructor signature)."""
    import inspect
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
    model_cls = MODEL_REGISTRY.get(opt['model_type'])
    for phase, dataset in (opt.get('datasets') or {}).items():
        cls = DATASET_REGISTRY.get(dataset['type'])
        if _is_plugin(cls):
            known = BASICSR_DATASET_KEYS | set(declared_options(cls, 'OPTIONS'))
            if phase == 'train' and _is_plugin(model_cls):
                known |= set(declared_options(model_cls, 'TRAIN_DATASET_OPTIONS'))
            _report_unknown(opt, f'datasets.{phase}', dataset, known)
    if _is_plugin(model_cls):
        train_known = BASICSR_TRAIN_KEYS | set(declared_options(model_cls, 'TRAIN_OPTIONS'))
        train_keys = [k for k in (opt.get('train') or {}) if not k.endswith('_opt')]  # losses: type-checked
        _report_unknown(opt, 'train', train_keys, train_known)
        _report_unknown(opt, 'val', opt.get('val') or {}, BASICSR_VAL_KEYS | set(declared_options(model_cls, 'VAL_OPTIONS')))
    for key, net_opt in opt.items():
        if not (key.startswith('network_') and isinstance(net_opt, dict)):
            continue
        cls = ARCH_REGISTRY.get(net_opt['type'])
        if not _is_plugin(cls):
            continue
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            continue
        known = {name for name in params if name != 'self'}
        _report_unknown(opt, f'{key} ({net_opt["type"]} arguments)', [k for k in net_opt if k != 'type'], known)


# ----------------------------------------------------------------------------- data, up front
def check_plugin_datasets(opt):
    """Build each of the plugin's datasets as BasicSR will, then check what can be checked
    cheaply before anything is written: the first sample decodes, every listed file exists and is
    not truncated (PNG/JPEG end markers) nor of the wrong channel count (PNG header), every
    meta_info key is in the LMDB."""
    import copy
    from basicsr.utils.registry import DATASET_REGISTRY
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        cls = DATASET_REGISTRY.get(dataset_opt['type'])
        if not _is_plugin(cls):
            continue
        section = f'datasets.{phase}'
        dataset_opt = copy.deepcopy(dict(dataset_opt))
        dataset_opt.setdefault('phase', phase.split('_')[0])
        dataset_opt.setdefault('scale', opt.get('scale', 1))
        dataset = None
        try:
            dataset = cls(dataset_opt)
            if len(dataset) == 0:
                raise OptionError(f'{section}: the dataset is empty ({dataset_opt.get("dataroot_gt")})')
            lmdb = getattr(dataset, 'lmdb', None)
            in_ch = int(dataset_opt.get('in_ch', 3))
            if lmdb is not None:
                _check_lmdb_keys(section, lmdb, getattr(dataset, 'keys', []), dataset_opt)
            else:
                for path in getattr(dataset, 'paths', []):
                    problem = sniff_image_file(path, in_ch)
                    if problem:
                        raise OptionError(f'{section}: {problem}')
            dataset[0]
        except OptionError:
            raise
        except (ImageReadError, ValueError, KeyError, OSError) as err:
            message = str(err) if not isinstance(err, KeyError) else f'missing option {err}'
            raise OptionError(f'{section}: {message}') from None
        finally:  # LMDB allows one environment per path and process: the run must be able to open it
            env = getattr(getattr(dataset, 'lmdb', None), '_env', None)
            if env is not None and not callable(env):  # (readers that share environments keep theirs)
                env.close()
                dataset.lmdb._env = None


def _check_lmdb_keys(section, reader, keys, dataset_opt):
    if keys:
        try:
            reader.get(keys[0])  # opens the reader's environment
        except Exception:  # noqa: BLE001 - a missing first key is reported with the others
            pass
    env = reader._env() if callable(reader._env) else reader._env
    if env is None:
        return
    with env.begin(write=False) as txn:
        missing = [k for k in keys if txn.get(k.encode('ascii')) is None]
    if missing:
        meta = dataset_opt.get('meta_info_file') or f'{reader.path}/meta_info.txt'
        more = f' (+{len(missing) - 5} more)' if len(missing) > 5 else ''
        raise OptionError(f'{section}: {len(missing)} key(s) of {meta} not in LMDB {reader.path}: '
                          f'{", ".join(missing[:5])}{more}')


def check_pretrained_networks(opt, resuming=False):
    """``path.pretrain_network_<x>``: the checkpoint's keys and shapes must match the network the
    options build (``strict_load_<x>``, default true); a mismatch lists the differences."""
    import copy
    from basicsr.utils.registry import ARCH_REGISTRY
    from gimsanet_arch.training.checkpoint import (CheckpointError, describe_mismatch, extract_state_dict,
                                                load_checkpoint_file)
    path_opt = opt.get('path') or {}
    if resuming or (opt.get('is_train', True) and path_opt.get('resume_state')):
        return  # BasicSR replaces the pretrain paths with the run's own checkpoints
    for key, net_opt in opt.items():
        if not (key.startswith('network_') and isinstance(net_opt, dict)):
            continue
        suffix = key[len('network_'):]
        load_path = path_opt.get(f'pretrain_network_{suffix}')
        if not load_path or not path_opt.get(f'strict_load_{suffix}', True):
            continue
        param_key = path_opt.get(f'param_key_{suffix}', 'params')
        kwargs = copy.deepcopy(dict(net_opt))
        net = ARCH_REGISTRY.get(kwargs.pop('type'))(**kwargs)  # not build_network: it would set up the logger
        loaded = extract_state_dict(load_checkpoint_file(load_path, trust=path_opt.get('trust_checkpoint', False)),
                                    load_path, param_key)
        diff = describe_mismatch(net.state_dict(), loaded)
        if diff:
            raise CheckpointError(f'path.pretrain_network_{suffix}: checkpoint {load_path} does not match '
                                  f'{type(net).__name__}: {diff}')


def check_run(opt, path, resuming=False):
    """Everything checked before a run starts: :func:`check_options`, misspelt keys, the data of
    the plugin's datasets and pretrained checkpoints. Returns the option dict."""
    import logging
    from basicsr.utils import logger as basicsr_logger
    logger_ready = 'basicsr' in basicsr_logger.initialized_logger
    try:
        check_options(opt, path)
        check_option_keys(opt)
        check_plugin_datasets(opt)
        check_pretrained_networks(opt, resuming)
    finally:
        # BasicSR sets its logger up once, with the run's log file: nothing checked here may do it first
        if not logger_ready and basicsr_logger.initialized_logger.pop('basicsr', None):
            logging.getLogger('basicsr').handlers.clear()
    return opt


# ----------------------------------------------------------------------------- errors at run time
def known_errors():
    """Error classes the CLI reports as one line (their messages name the file or key)."""
    from gimsanet_arch.training.checkpoint import CheckpointError, DiskFullError
    from gimsanet_arch.training.resume import ResumeError
    from gimsanet_arch.training.run_lock import RunLockError
    return (OptionError, ImageReadError, CheckpointError, ResumeError, FloatingPointError, DiskFullError, RunLockError)


def one_line(err):
    """The message of ``err`` as one line (DataLoader workers wrap it with a traceback)."""
    import re
    text = str(err).strip()
    if 'Original Traceback' in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        text = re.sub(r'^[\w.]*(Error|Exception): ', '', last)
    return ' '.join(text.split())
