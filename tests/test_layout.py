"""The package layout keeps its promises: imports only go down the layers, modules stay short.

Each rule is one test over every module of the packages; a failure lists every offender at once.
"""
import ast
import os

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
TORCH_STACK = ('torch', 'torchvision', 'basicsr', 'gimsanet_arch')
MAX_LINES = 400


def layer(module):
    """The layer number of ``module``, or None if no entry of :data:`LAYERS` covers it."""
    best = None
    for prefix, number in LAYERS:
        if module == prefix or module.startswith(prefix + '.'):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, number)
    return None if best is None else best[1]


def modules(repo=REPO, packages=PACKAGES):
    """(dotted module name, file path) of every ``.py`` file of ``packages`` under ``repo``."""
    for package in packages:
        for folder, _, files in sorted(os.walk(os.path.join(repo, package))):
            for name in sorted(files):
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    rel = os.path.relpath(path, repo)[:-3].replace(os.sep, '.')
                    yield (rel[:-len('.__init__')] if rel.endswith('.__init__') else rel), path


def imported(path, module):
    """Every module name ``path`` imports (function-level imports included)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
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


# ----------------------------------------------------------------------------- the rules: every offender
def upward_imports(found):
    """One line per module outside every layer and per import of a higher layer."""
    out = []
    for module, path in found:
        mine = layer(module)
        if mine is None:
            out.append(f'{module} is in no layer of tests/test_layout.py')
            continue
        for name in imported(path, module):
            if name.split('.')[0] in PACKAGES:
                theirs = layer(name)
                if theirs is None or theirs > mine:
                    out.append(f'{module} (layer {mine}) imports {name} (layer {theirs})')
    return out


def torch_imports_in_preparation(found):
    """One line per import of the torch stack from the torch-free preparation package."""
    return [f'{module}: {name}' for module, path in found if module.split('.')[0] == 'gimsanet_prep'
            for name in imported(path, module) if name.split('.')[0] in TORCH_STACK]


def long_modules(found, max_lines=MAX_LINES):
    out = []
    for module, path in found:
        with open(path) as f:
            lines = sum(1 for _ in f)
        if lines > max_lines:
            out.append(f'{module}: {lines} lines (split it by concern)')
    return out


ALL = list(modules())


def _report(offenders, rule):
    return f'{len(offenders)} offender(s) of "{rule}":\n  ' + '\n  '.join(offenders)


def test_every_module_is_found():
    names = {m for m, _ in ALL}
    assert {'gimsanet_arch', 'gimsanet_prep', 'gimsanet_arch.commands.denoise'} <= names
    assert len(ALL) > 50


def test_imports_go_down_the_layers():
    offenders = upward_imports(ALL)
    assert not offenders, _report(offenders, 'imports only go down the layers')


def test_preparation_never_imports_torch():
    assert any(m.startswith('gimsanet_prep.') for m, _ in ALL)
    offenders = torch_imports_in_preparation(ALL)
    assert not offenders, _report(offenders, 'gimsanet_prep never imports the torch stack')


def test_modules_stay_short():
    offenders = long_modules(ALL)
    assert not offenders, _report(offenders, f'modules stay under {MAX_LINES} lines')


# ----------------------------------------------------------------------------- the checks catch what they should
def test_an_upward_import_is_caught(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('def f():\n    from gimsanet_arch.models.denoise_model import DenoiseModel\n')
    names = imported(str(bad), 'gimsanet_arch.archs.bad')
    assert any(layer(n) > layer('gimsanet_arch.archs.bad') for n in names)


def test_every_offender_is_listed(tmp_path):
    """A fake tree with two offenders of each rule: each rule reports both, not only the first."""
    arch = tmp_path / 'gimsanet_arch' / 'archs'
    prep = tmp_path / 'gimsanet_prep'
    arch.mkdir(parents=True)
    prep.mkdir()
    (tmp_path / 'gimsanet_arch' / '__init__.py').write_text('')
    (arch / '__init__.py').write_text('')
    (arch / 'a.py').write_text('from gimsanet_arch.models import x\n' + '\n' * MAX_LINES)
    (arch / 'b.py').write_text('from ..commands import denoise\n' + '\n' * MAX_LINES)
    (prep / '__init__.py').write_text('import torch\n')
    (prep / 'c.py').write_text('def f():\n    from basicsr.utils import img2tensor\n')
    found = list(modules(str(tmp_path)))
    up = upward_imports(found)
    assert up == ['gimsanet_arch.archs.a (layer 2) imports gimsanet_arch.models.x (layer 6)',
                  'gimsanet_arch.archs.b (layer 2) imports gimsanet_arch.commands (layer 8)']
    assert torch_imports_in_preparation(found) == ['gimsanet_prep: torch', 'gimsanet_prep.c: basicsr.utils.img2tensor']
    assert [line.split(':')[0] for line in long_modules(found)] == ['gimsanet_arch.archs.a', 'gimsanet_arch.archs.b']
