"""Restormer and NAFNet next to their official implementations, in the same process, with the
same weights: throughput in fp32 and bf16, and how far the outputs are apart.

The official code is never part of this repository. Put it in an ignored folder (``.official/``
by default, ``--official-root``) with the layout of its repository, either as clones::

    git clone --depth 1 https://github.com/swz30/Restormer .official/Restormer
    git clone --depth 1 https://github.com/megvii-research/NAFNet .official/NAFNet

or by extracting only the files used here from a bare copy of each repository::

    for f in basicsr/models/archs/restormer_arch.py; do
        mkdir -p .official/Restormer/$(dirname $f)
        git --git-dir=Restormer.git show HEAD:$f > .official/Restormer/$f; done
    for f in basicsr/models/archs/NAFNet_arch.py basicsr/models/archs/arch_util.py \\
             basicsr/models/archs/local_arch.py; do
        mkdir -p .official/NAFNet/$(dirname $f)
        git --git-dir=NAFNet.git show HEAD:$f > .official/NAFNet/$f; done

The arch files are imported as they are. NAFNet's imports its helpers from its own ``basicsr``
(``basicsr.models.archs.arch_util`` / ``local_arch``), which the installed basicsr 1.4.2 does not
have: :func:`official_imports` puts the official helper files under those names for the import
only and removes them afterwards. Without the files the section is skipped with a note.

Both networks get the plugin network's weights (random, or ``weights``) through a strict
``load_state_dict``: the parameter names and shapes are the official ones. Timed on one random
image: ``official fp32`` (NCHW, as released), ``official bf16 autocast``, and the plugin through
the inference engine (``plugin fp32``, ``plugin bf16``, ``plugin default path``), each plugin row
with its speed ratio to both official ones. Outputs, on the noisy photos: the plugin's fp32 output
against the official fp32 one (largest absolute difference) and the plugin's bf16 output (PSNR
change against the clean photos with trained weights; with random weights, PSNR between outputs).
The targets read "plugin fp32 >= 1.2x official fp32" and "plugin bf16 >= 2x official fp32".
"""
import contextlib
import importlib.util
import os.path as osp
import sys
import types
from dataclasses import dataclass

import torch

from gimsanet_arch.inference import engine, measure, network
from benchmarks.perf import photos as photo_data
from benchmarks.perf.inference_paths import prepared
from benchmarks.perf.results import Target, error_row, row, timing_rows, value

SECTION = 'official'
OUTPUT_SECTION = 'official outputs'
REFERENCE = 'official fp32'


@dataclass(frozen=True)
class OfficialSource:
    folder: str  # under the official root: the repository's name
    arch_file: str
    class_name: str
    helpers: tuple = ()  # files the arch file imports as basicsr.models.archs.<stem>


SOURCES = {
    'Restormer': OfficialSource('Restormer', 'basicsr/models/archs/restormer_arch.py', 'Restormer'),
    'NAFNet': OfficialSource('NAFNet', 'basicsr/models/archs/NAFNet_arch.py', 'NAFNet',
                             ('basicsr/models/archs/arch_util.py', 'basicsr/models/archs/local_arch.py')),
}
HELPER_PACKAGE = 'basicsr.models.archs'


class OfficialCodeMissing(Exception):
    """The official files are not under the official root."""


def _load_file(module_name, path):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def official_imports(folder, helpers):
    """``basicsr.models.archs.<stem>`` is each official helper file (loaded from ``folder``) while
    the block runs; afterwards ``sys.modules`` is as it was (the installed basicsr untouched)."""
    modules = [f'{HELPER_PACKAGE}.{osp.splitext(osp.basename(h))[0]}' for h in helpers]
    names = [HELPER_PACKAGE] + modules if helpers else []
    saved = {name: sys.modules.get(name) for name in names}
    try:
        if helpers:
            package = types.ModuleType(HELPER_PACKAGE)
            package.__path__ = []  # a package with nothing to find: only the helpers put here
            sys.modules[HELPER_PACKAGE] = package
            for helper, name in zip(helpers, modules):
                sys.modules[name] = _load_file(name, osp.join(folder, helper))
                setattr(package, name.rsplit('.', 1)[1], sys.modules[name])
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update({name: module for name, module in saved.items() if module is not None})


def load_official_class(root, arch):
    """The official network class of ``arch`` (a key of :data:`SOURCES`) from ``root``; raises
    :class:`OfficialCodeMissing` naming the missing file."""
    source = SOURCES[arch]
    folder = osp.join(root, source.folder)
    for relative in (source.arch_file,) + source.helpers:
        if not osp.isfile(osp.join(folder, relative)):
            raise OfficialCodeMissing(f'official {arch} code not found: {osp.join(folder, relative)} '
                                      '(see benchmarks/perf/official.py for how to fetch it)')
    with official_imports(folder, source.helpers):
        module = _load_file(f'_official_{arch.lower()}_arch', osp.join(folder, source.arch_file))
    return getattr(module, source.class_name)


def build_pair(name, network_opt, official_class, device='cpu', weights=None):
    """``(plugin net, padding multiple, official net)`` with the same weights (strict load)."""
    plugin, multiple = network.build(network.ModelSpec(name, network_opt, weights), device)
    kwargs = {k: v for k, v in network_opt.items() if k != 'type'}
    official = official_class(**kwargs)
    official.load_state_dict(plugin.state_dict(), strict=True)
    return plugin, multiple, official.to(device).eval()


def forwards(plugin, multiple, official):
    """The timed and compared calls, by name (see the module docstring)."""
    fast = prepared(plugin)

    def official_bf16(x):
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            return official(x).float()
    return {REFERENCE: official, 'official bf16 autocast': official_bf16,
            'plugin fp32': lambda x: engine.run(fast, x, multiple, dtype=torch.float32),
            'plugin bf16': lambda x: engine.run(fast, x, multiple, dtype=torch.bfloat16),
            'plugin default path': lambda x: engine.run(fast, x, multiple)}


def targets(name):
    """The targets for the model ``name``."""
    official, fp32, bf16 = ((SECTION, f'{name} {impl}', 'MP/s') for impl in (REFERENCE, 'plugin fp32', 'plugin bf16'))
    return (Target(f'{name} plugin fp32 / official fp32', fp32, official, '>=', 1.2),
            Target(f'{name} plugin bf16 / official fp32', bf16, official, '>=', 2.),
            Target(f'{name} fp32 max abs vs official', (OUTPUT_SECTION, f'{name} plugin fp32', 'max abs'), None,
                   '<=', 1e-5, ''),
            Target(f'{name} bf16 PSNR change vs official fp32', (OUTPUT_SECTION, f'{name} plugin bf16', 'PSNR change'),
                   None, '<=', 0.05, 'dB'))


def speed_rows(name, calls, x, runs=3, warmup=1):
    """ms and MP/s of every call on ``x``; each plugin row also gets its ratio to the official ones."""
    rows = []
    for impl, call in calls.items():
        try:
            with torch.no_grad():
                seconds, _ = measure.median_seconds(lambda: call(x), x.device, runs=runs, warmup=warmup)
            rows += timing_rows(SECTION, f'{name} {impl}', seconds, pixels=x.shape[-2] * x.shape[-1])
        except (RuntimeError, NotImplementedError) as err:
            rows.append(error_row(SECTION, f'{name} {impl}', err))
    for impl in calls:
        mine = value(rows, (SECTION, f'{name} {impl}', 'MP/s'))
        for theirs in (REFERENCE, 'official bf16 autocast'):
            base = value(rows, (SECTION, f'{name} {theirs}', 'MP/s'))
            if impl.startswith('plugin') and mine and base:
                rows.append(row(SECTION, f'{name} {impl}', f'x {theirs}', mine / base, 'x'))
    return rows


def output_rows(name, calls, photos, sigma, trained, device='cpu'):
    """The plugin's outputs against the official fp32 ones on the noisy photos."""
    compared = {k: calls[k] for k in (REFERENCE, 'plugin fp32', 'plugin bf16')}
    with torch.no_grad():
        outputs = photo_data.denoise_all(compared, photos, sigma, device=device)
    rows = []
    for impl in ('plugin fp32', 'plugin bf16'):
        change, metric, max_abs = photo_data.psnr_change(outputs, photos, REFERENCE, impl, trained)
        rows += [row(OUTPUT_SECTION, f'{name} {impl}', 'max abs', max_abs, '', f'vs {REFERENCE}'),
                 row(OUTPUT_SECTION, f'{name} {impl}', metric, change, 'dB', f'vs {REFERENCE}')]
    if not trained:
        rows.append(row(OUTPUT_SECTION, f'{name} plugin bf16', 'PSNR change', None, 'dB',
                        'random weights (give --official-weights): see PSNR vs reference output'))
    return rows


def compare(name, network_opt, arch, root, device='cpu', size=256, runs=3, warmup=1, photos=None, sigma=25,
            weights=None):
    """All rows of one model: skipped (with the reason) when the official code is not under ``root``."""
    try:
        official_class = load_official_class(root, arch)
    except OfficialCodeMissing as err:
        return [row(SECTION, f'{name} {REFERENCE}', 'MP/s', None, 'MP/s', f'skipped: {err}')]
    try:
        plugin, multiple, official = build_pair(name, network_opt, official_class, device, weights)
    except (RuntimeError, TypeError, ValueError) as err:  # e.g. the state_dicts differ
        return [error_row(SECTION, f'{name} {REFERENCE}', err)]
    calls = forwards(plugin, multiple, official)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    rows = speed_rows(name, calls, x, runs, warmup)
    if photos:
        rows += output_rows(name, calls, photos, sigma, bool(weights), device)
    return rows
