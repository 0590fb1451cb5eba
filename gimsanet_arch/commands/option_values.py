"""The numbers of a run's options: type and bounds, checked before anything runs.

PyYAML reads ``1e-3`` (no dot) as the *string* '1e-3', which BasicSR passes on to the optimizer; a
``--force_yml train:total_iter=abc`` becomes the string 'abc'. Each number is checked here and a
string that looks like a number gets the fix in the message.
"""
import math

from gimsanet_arch.options import OptionError


def check_numbers(opt):
    """Every number of :data:`NUMBERS` and :data:`DATASET_NUMBERS` that the options set."""
    for keys, kind, low, high in NUMBERS:
        node = opt
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(keys[-1]) is not None:
            _check_number('.'.join(keys), node[keys[-1]], kind, low, high)
    for phase, dataset in (opt.get('datasets') or {}).items():
        if not isinstance(dataset, dict):
            raise OptionError(f'datasets.{phase}: expected a mapping of dataset options, got {dataset!r}')
        for key, (kind, low) in DATASET_NUMBERS.items():
            if dataset.get(key) is not None:
                _check_number(f'datasets.{phase}.{key}', dataset[key], kind, low, None)
        if phase == 'train' and opt.get('is_train', True) and dataset.get('batch_size_per_gpu') is None:
            raise OptionError('datasets.train.batch_size_per_gpu is missing')
        if phase.split('_')[0] == 'train':
            _check_training_noise(phase, dataset)
    for keys, kind, low, what in LISTS:
        value = _lookup(opt, keys)
        if value is not None and not _is_list_of(value, kind, low):
            raise OptionError(f'{".".join(keys)}: expected a list of {what} >= {low}, got {value!r}')


def _lookup(opt, keys):
    node = opt
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _is_list_of(value, kind, low):
    return isinstance(value, (list, tuple)) and all(
        _finite(v) and v >= low and (kind == 'float' or float(v) == int(v)) for v in value)


def _finite(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _check_training_noise(phase, dataset):
    """The noise a Gaussian-noise training set draws (``sigma_type``, ``sigma_range``): the
    dataset's own rule, up front, named as the option."""
    from basicsr.utils.registry import DATASET_REGISTRY
    from gimsanet_arch.data.gaussian_noise_dataset import SIGMA_TYPES, GaussianNoiseDataset, sigma_range_problem
    try:
        cls = DATASET_REGISTRY.get(dataset.get('type'))
    except KeyError:  # check_types names an unknown type
        return
    if not (isinstance(cls, type) and issubclass(cls, GaussianNoiseDataset)):
        return
    sigma_type = dataset.get('sigma_type', 'random')
    if sigma_type not in SIGMA_TYPES:
        raise OptionError(f'datasets.{phase}.sigma_type: expected one of {", ".join(SIGMA_TYPES)}, got {sigma_type!r}')
    problem = sigma_range_problem(sigma_type, dataset.get('sigma_range', [0, 50]))
    if problem:
        raise OptionError(f'datasets.{phase}.sigma_range: {problem}')


# (option path, 'int' | 'float', lowest allowed, highest allowed (excluded) or None)
NUMBERS = [
    (('train', 'total_iter'), 'int', 1, None),
    (('train', 'warmup_iter'), 'int', -1, None),
    (('train', 'cpu_budget_hours'), 'float', 1e-9, None),
    (('train', 'ema_decay'), 'float', 0, 1),
    (('train', 'accum_steps'), 'int', 1, None),
    (('train', 'optim_g', 'lr'), 'float', 0, None),
    (('train', 'optim_g', 'weight_decay'), 'float', 0, None),
    (('train', 'scheduler', 'gamma'), 'float', 0, None),  # the lr is multiplied by it: negative = negative lr
    (('train', 'scheduler', 'eta_min'), 'float', 0, None),  # the cosine schedules' lowest lr
    (('val', 'val_freq'), 'int', 1, None),
    (('logger', 'print_freq'), 'int', 1, None),
    (('logger', 'save_checkpoint_freq'), 'int', 1, None),
    (('manual_seed', ), 'int', 0, None),
    (('num_gpu', ), 'int', 0, None),
]
# (option path, 'int' | 'float', lowest allowed, what the list holds): lists of numbers
LISTS = [
    (('train', 'scheduler', 'milestones'), 'int', 0, 'whole iteration numbers'),
    (('train', 'scheduler', 'periods'), 'int', 1, 'whole iteration numbers'),
    (('train', 'scheduler', 'restart_weights'), 'float', 0, 'numbers'),
    (('train', 'scheduler', 'eta_mins'), 'float', 0, 'learning rates'),
]
DATASET_NUMBERS = {'batch_size_per_gpu': ('int', 1), 'num_worker_per_gpu': ('int', 0), 'gt_size': ('int', 1),
                   'dataset_enlarge_ratio': ('int', 1), 'sigma_test': ('float', 0)}


def _check_number(name, value, kind, low, high):
    """A number of ``kind`` in ``[low, high)``; strings get a hint for PyYAML's float trap."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            raise OptionError(f'{name}: expected a number, got {value!r}') from None
        raise OptionError(f'{name}: {value!r} is read as text, not a number (PyYAML needs a dot in a float '
                          f'with an exponent): write {_yaml_float(value)} or !!float {value}')
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise OptionError(f'{name}: expected a number, got {value!r}')
    if kind == 'int' and float(value) != int(value):
        raise OptionError(f'{name}: expected a whole number, got {value!r}')
    if value < low or (high is not None and value >= high):
        bound = f'>= {low}' if high is None else f'in [{low}, {high})'
        raise OptionError(f'{name}: must be {bound}, got {value!r}')


def _yaml_float(text):
    mantissa, _, exponent = text.lower().partition('e')
    return f'{mantissa}.0e{exponent}' if '.' not in mantissa and exponent else text
