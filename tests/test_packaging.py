"""What ``pip install .`` installs: the packages and console commands setup.py declares, read by
running setup.py itself with ``setuptools.setup`` replaced by a recorder (fast: nothing is built).

The lab stays out of the installed package: the performance studies (``benchmarks/``), the race
(``scripts/race/``) and the Debian photo tooling (``scripts/data_preparation/``) are run from the
repository, never installed.
"""
import ast
import os
import re

import pytest
import setuptools

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a dotted name's part that belongs to the lab: perf*, *_race / race_*, *debian*
LAB_PART = re.compile(r'^perf|(^|_)race(_|$)|debian')
# "issue 13", "issues #4/#5", "(#12)": a tracker number; an upstream project's is cited by its name
ISSUE_NUMBER = re.compile(r'(?:(\w+)\s+)?\bissues?\s+#?\d+|\(#\d+\)', re.IGNORECASE)
UPSTREAM = {'basicsr', 'restormer', 'nafnet', 'swinir', 'pytorch', 'torch', 'torchvision', 'opencv', 'numpy', 'keras'}
# what users get: the installed packages, the option files, the README and setup.py
PRODUCT = ('gimsanet_arch', 'gimsanet_prep', 'options', 'README.md', 'setup.py')


@pytest.fixture(scope='module')
def setup_kwargs():
    """The keyword arguments setup.py passes to ``setuptools.setup``, run from the repository root."""
    recorded = {}
    real_setup, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kwargs: recorded.update(kwargs)
    try:
        os.chdir(REPO)
        path = os.path.join(REPO, 'setup.py')
        with open(path) as f:
            exec(compile(f.read(), path, 'exec'), {'__name__': '__main__', '__file__': path})
    finally:
        setuptools.setup = real_setup
        os.chdir(cwd)
    return recorded


def installed_modules(kwargs):
    """Every module the build would copy: each ``.py`` file directly inside each declared package
    (what setuptools' build_py copies), plus any ``py_modules``."""
    modules = list(kwargs.get('py_modules') or [])
    package_dir = kwargs.get('package_dir') or {}
    for package in kwargs['packages']:
        folder = os.path.join(REPO, package_dir.get(package, package.replace('.', os.sep)))
        for name in sorted(os.listdir(folder)):
            if name.endswith('.py'):
                stem = name[:-3]
                modules.append(package if stem == '__init__' else f'{package}.{stem}')
    return modules


def lab_names(names):
    return [n for n in names if any(LAB_PART.search(part) for part in n.split('.'))]


def test_the_lab_pattern_finds_the_lab_and_nothing_else():
    assert lab_names(['benchmarks.perf.command', 'gimsanet_arch.commands.perf_report', 'scripts.race.score_race',
                      'gimsanet_prep.debian_sources', 'race']) == [
        'benchmarks.perf.command', 'gimsanet_arch.commands.perf_report', 'scripts.race.score_race',
        'gimsanet_prep.debian_sources', 'race']
    assert lab_names(['gimsanet_arch.export.torchscript_export', 'gimsanet_arch.commands.benchmark',
                      'gimsanet_arch.inference.measure', 'gimsanet_prep.images']) == []


def test_only_the_two_packages_are_installed(setup_kwargs):
    packages = setup_kwargs['packages']
    assert {p.split('.')[0] for p in packages} == {'gimsanet_arch', 'gimsanet_prep'}
    assert lab_names(packages) == [] and not [p for p in packages if '__pycache__' in p]
    assert not setup_kwargs.get('py_modules')
    # the user features are there: the benchmark command, comparison, the inference engine
    modules = installed_modules(setup_kwargs)
    for wanted in ('gimsanet_arch.commands.benchmark', 'gimsanet_arch.inference.benchmark',
                   'gimsanet_arch.commands.compare', 'gimsanet_arch.inference.network', 'gimsanet_prep.build'):
        assert wanted in modules


def test_every_module_of_the_two_packages_is_installed(setup_kwargs):
    """A folder of code without an ``__init__.py`` is installed too (find_packages would drop it, and
    the installed package would fail at its first import of that folder)."""
    installed, tracked = set(installed_modules(setup_kwargs)), set()
    for top in ('gimsanet_arch', 'gimsanet_prep'):
        for folder, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            rel = os.path.relpath(folder, REPO).replace(os.sep, '.')
            tracked |= {rel if f == '__init__.py' else f'{rel}.{f[:-3]}' for f in files if f.endswith('.py')}
    assert sorted(tracked - installed) == []
    assert 'gimsanet_arch.training.checkpoint' in installed


def test_no_perf_race_or_debian_code_is_installed(setup_kwargs):
    modules = installed_modules(setup_kwargs)
    assert lab_names(modules) == []
    assert not [m for m in modules if m.split('.')[0] in ('benchmarks', 'scripts')]
    # and the lab is where it went: beside the package, not deleted
    for path in ('benchmarks/perf/command.py', 'scripts/race/score_race.py', 'scripts/data_preparation/debian_sources.py'):
        assert os.path.isfile(os.path.join(REPO, path)), path


def test_no_console_command_runs_lab_code(setup_kwargs):
    commands = setup_kwargs['entry_points']['console_scripts']
    targets = [line.split('=', 1)[1].strip().split(':')[0] for line in commands]
    assert 'gimsanet_arch.commands.benchmark' in targets
    assert lab_names(targets) == []
    modules = set(installed_modules(setup_kwargs))
    assert all(t in modules for t in targets), targets


def test_installed_code_imports_no_lab_code(setup_kwargs):
    """No installed module imports from the lab (it would fail once installed)."""
    offenders = []
    for module in installed_modules(setup_kwargs):
        parts = module.split('.')
        path = os.path.join(REPO, *parts) + '.py'
        if not os.path.isfile(path):
            path = os.path.join(REPO, *parts, '__init__.py')
        for node in ast.walk(ast.parse(open(path).read(), path)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) else []
            offenders += [f'{module}: {n}' for n in names
                          if n.split('.')[0] in ('benchmarks', 'scripts', 'debian_sources') or lab_names([n])]
    assert offenders == []



def issue_numbers(text):
    """The project-tracker numbers in ``text`` (upstream projects' issues, named, are citations)."""
    return [m.group(0) for m in ISSUE_NUMBER.finditer(text) if (m.group(1) or '').lower() not in UPSTREAM]


def test_the_issue_pattern():
    assert issue_numbers('the race of issue 13 (docs/race.md); see (#12); Issues #4/#5') == [
        'of issue 13', '(#12)', 'Issues #4']
    assert issue_numbers('BasicSR issues #253/#606; Restormer issue\n      #36; an issue with 3 images') == []


def test_no_issue_numbers_in_the_product():
    offenders = []
    for top in PRODUCT:
        path = os.path.join(REPO, top)
        files = [path] if os.path.isfile(path) else [
            os.path.join(folder, f) for folder, dirs, names in os.walk(path) for f in names
            if f.endswith(('.py', '.yml', '.yaml', '.md', '.json', '.txt'))]
        for name in files:
            with open(name, encoding='utf-8') as f:
                offenders += [f'{os.path.relpath(name, REPO)}: {hit}' for hit in issue_numbers(f.read())]
    assert offenders == []
