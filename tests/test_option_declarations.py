"""Option keys are declared by the classes that read them, each with a one-line description, and
the up-front check of ``basicsr train`` knows exactly those."""
import inspect
import re

import pytest

import gimsanet_arch  # noqa: F401
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY
from gimsanet_arch.commands import option_checks
from gimsanet_arch.commands.option_checks import declared_options

# <var>.get('key') / <var>['key'], also after chained indexing: self.opt['val'].get('key')
READ = re.compile(r"""\b(\w+)((?:\[\s*['"]\w+['"]\s*\])*)(?:\.get\(|\[)\s*['"](\w+)['"]""")


def _plugin(registry):
    return {name: cls for name, cls in registry._obj_map.items() if option_checks._is_plugin(cls)}


def _read_keys(cls, variables, chains=()):
    """Keys the source of ``cls`` and its plugin base classes reads from ``variables`` (or
    ``self.opt[<chain>]``)."""
    keys = set()
    for klass in cls.__mro__:
        if option_checks._is_plugin(klass):
            source = inspect.getsource(klass)
            for var, chain, key in READ.findall(source):
                if (var in variables and not chain) or (var == 'opt' and chain.strip("[]'\"") in chains):
                    keys.add(key)
    return keys


@pytest.mark.parametrize('name', sorted(_plugin(DATASET_REGISTRY)))
def test_every_dataset_key_read_is_declared(name):
    cls = DATASET_REGISTRY.get(name)
    undeclared = _read_keys(cls, {'opt'}) - option_checks.BASICSR_DATASET_KEYS - set(declared_options(cls, 'OPTIONS'))
    assert not undeclared, f'{name} reads undeclared option keys: {sorted(undeclared)}'


@pytest.mark.parametrize('name', sorted(_plugin(MODEL_REGISTRY)))
def test_every_model_key_read_is_declared(name):
    cls = MODEL_REGISTRY.get(name)
    for variables, chain, basicsr, attribute in (({'train_opt'}, 'train', option_checks.BASICSR_TRAIN_KEYS,
                                                   'TRAIN_OPTIONS'),
                                                  ({'val_opt'}, 'val', option_checks.BASICSR_VAL_KEYS, 'VAL_OPTIONS')):
        undeclared = _read_keys(cls, variables, (chain, )) - basicsr - set(declared_options(cls, attribute))
        assert not undeclared, f'{name} reads undeclared {chain} keys: {sorted(undeclared)}'


def test_every_declaration_has_a_one_line_description():
    bad = []
    for registry, attributes in ((DATASET_REGISTRY, ('OPTIONS', )),
                                 (MODEL_REGISTRY, ('TRAIN_OPTIONS', 'VAL_OPTIONS', 'TRAIN_DATASET_OPTIONS'))):
        for name, cls in _plugin(registry).items():
            for attribute in attributes:
                for key, text in declared_options(cls, attribute).items():
                    if not (isinstance(text, str) and text.strip() and '\n' not in text):
                        bad.append(f'{name}.{attribute}[{key}]')
    assert not bad, f'declarations without a one-line description: {bad}'


def test_the_check_knows_the_declared_keys_and_suggests_them():
    opt = {'model_type': 'DenoiseModel', 'datasets': {'train': {'type': 'GaussianNoiseDataset', 'cach_images': True}}}
    with pytest.raises(option_checks.OptionError, match='Did you mean "cache_images"'):
        option_checks.check_option_keys(opt)
    opt = {'model_type': 'DenoiseModel', 'datasets': {}, 'train': {'cpu_budget_hour': 1}}
    with pytest.raises(option_checks.OptionError, match='Did you mean "cpu_budget_hours"'):
        option_checks.check_option_keys(opt)
    opt = {'model_type': 'ImageRestorationModel', 'datasets': {}, 'val': {'crop_size_hh': 8}}
    with pytest.raises(option_checks.OptionError, match='Did you mean "crop_size_h"'):
        option_checks.check_option_keys(opt)
    # DenoiseModel does not read NAFNet's grids options
    with pytest.raises(option_checks.OptionError, match='unknown option "grids"'):
        option_checks.check_option_keys({'model_type': 'DenoiseModel', 'datasets': {}, 'val': {'grids': True}})
    option_checks.check_option_keys({'model_type': 'ImageRestorationModel', 'datasets': {}, 'val': {'grids': True}})
