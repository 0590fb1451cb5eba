"""The package layout keeps its promises: imports only go down the layers, modules stay short."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# lower number = lower layer; a module may import its own layer and the ones below
LAYERS = [
    ('gimsanet_prep', 0),  # torch-free: image files, data preparation
    ('gimsanet_arch.version', 1), ('gimsanet_arch.registry_scan', 1), ('gimsanet_arch.options', 1),
    ('gimsanet_arch.archs', 2), ('gimsanet_arch.losses', 2), ('gimsanet_arch.metrics', 2),
    ('gimsanet_arch.data', 3),
    ('gimsanet_arch.training', 4),
    ('gimsanet_arch.inference', 5),
    ('gimsanet_arch.models', 6),
    ('gimsanet_arch.compat', 7), ('gimsanet_arch.export', 7), ('gimsanet_arch.perf', 7),
    ('gimsanet_arch.commands', 8), ('gimsanet_arch.train', 8), ('gimsanet_arch.test', 8),
    ('gimsanet_arch.denoise', 8),
    ('gimsanet_arch', 9),  # the package's __init__: applies compat, registers everything
]
PACKAGES = ('gimsanet_arch', 'gimsanet_prep')
MAX_LINES = 400


def layer(module):
    best = None
    for prefix, number in LAYERS:
        if module == prefix or module.startswith(prefix + '.'):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, number)
    if best is None:
        raise AssertionError(f'{module} is in no layer of tests/test_layout.py')
    return best[1]


def modules():
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for name in sorted(files):
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
                    yield (rel[:-len('.__init__')] if rel.endswith('.__init__') else rel), path


def imported(path, module):
    """Every module name ``path`` imports (function-level imports included)."""
    tree = ast.parse(open(path).read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the module's package
                base = module.split('.')[:-node.level] if not path.endswith('__init__.py') else \
                    module.split('.')[:len(module.split('.')) - node.level + 1]
                names.append('.'.join(base + ([node.module] if node.module else [])))
            elif node.module:
                names += [f'{node.module}.{alias.name}' for alias in node.names]
    return names


ALL = list(modules())


@pytest.mark.parametrize('module,path', ALL, ids=[m for m, _ in ALL])
def test_imports_go_down_the_layers(module, path):
    mine = layer(module)
    for name in imported(path, module):
        if name.split('.')[0] in PACKAGES:
            assert layer(name) <= mine, f'{module} (layer {mine}) imports {name} (layer {layer(name)})'


@pytest.mark.parametrize('module,path', [(m, p) for m, p in ALL if m.startswith('gimsanet_prep')],
                         ids=[m for m, _ in ALL if m.startswith('gimsanet_prep')])
def test_preparation_never_imports_torch(module, path):
    for name in imported(path, module):
        assert name.split('.')[0] not in ('torch', 'torchvision', 'basicsr', 'gimsanet_arch'), f'{module}: {name}'


@pytest.mark.parametrize('module,path', ALL, ids=[m for m, _ in ALL])
def test_modules_stay_short(module, path):
    with open(path) as f:
        lines = sum(1 for _ in f)
    assert lines <= MAX_LINES, f'{module}: {lines} lines (split it by concern)'


def test_an_upward_import_is_caught(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('def f():\n    from gimsanet_arch.models.denoise_model import DenoiseModel\n')
    names = imported(str(bad), 'gimsanet_arch.archs.bad')
    assert any(layer(n) > layer('gimsanet_arch.archs.bad') for n in names)
