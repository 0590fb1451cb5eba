"""What the plugin changes in BasicSR, declared in one place.

``import gimsanet_arch`` calls :func:`apply` before anything else touches basicsr. It never edits
site-packages, and it changes only what BasicSR's own training and test loops leave no other way
to reach: model-level behaviour (checkpoints, exact resume, DDP on CPU) lives in the plugin's
:class:`~gimsanet_arch.models.denoise_model.DenoiseModel`, so other BasicSR models in the process
stay as BasicSR wrote them. Two tables:

* :data:`STAND_INS` — modules basicsr 1.4.2 imports that today's stack no longer has; they must
  exist before ``import basicsr``.
* :func:`patches` — every BasicSR function the plugin replaces: where it lives (an imported module
  or class and the attribute name), the plugin function that makes the replacement, why, the test
  that shows it, and a check for the defect. :func:`install` applies a row only when its check
  finds the defect in the installed basicsr, so on a basicsr that fixed it the row is a no-op.

One idempotence rule: an installed replacement carries ``_gimsanet_patch = <row name>``, and a row
whose target already carries its name is skipped. One way to reach what was replaced:
:func:`original` (the replacement's ``__wrapped__``). The bodies live in the module of their
concern (training/, data/, options.py); this module only declares and installs them.
"""
import dataclasses
import functools
import importlib
import importlib.util
import inspect
import os
import sys
import types
import warnings

APPLIED = {}  # row name -> True (installed) / False (not needed here); filled once per process


def _module_exists(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _basicsr_source_has(module, fragment):
    """True when basicsr's ``module`` source file contains ``fragment``. The file is found and read,
    not imported: the stand-ins are decided before ``import basicsr``, and ``find_spec`` of a
    submodule would import its package."""
    try:
        package = importlib.util.find_spec('basicsr')
        relative = module.split('.')[1:]
        path = os.path.join(package.submodule_search_locations[0], *relative) + '.py'
        with open(path) as f:
            return fragment in f.read()
    except (ImportError, ValueError, AttributeError, TypeError, IndexError, OSError):
        return True  # cannot tell: keep the plugin's behaviour


# ----------------------------------------------------------------------------- pre-import stand-ins
def _functional_tensor_module():
    """``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17), which
    ``basicsr/data/degradations.py`` imports at module level for ``rgb_to_grayscale`` alone."""
    from torchvision.transforms import functional as tv_functional
    module = types.ModuleType('torchvision.transforms.functional_tensor')
    module.rgb_to_grayscale = tv_functional.rgb_to_grayscale
    module.__doc__ = 'Stand-in created by gimsanet_arch.compat for basicsr 1.4.2.'
    return {'torchvision.transforms.functional_tensor': module}


def _loose_version_module():
    import re
    from functools import total_ordering

    @total_ordering
    class LooseVersion:
        """Minimal LooseVersion: compares dotted versions component by component."""

        def __init__(self, vstring):
            self.vstring = str(vstring)
            parts = [p for p in re.split(r'(\d+|[a-z]+|\.)', self.vstring) if p and p != '.']
            self.version = [int(p) if p.isdigit() else p for p in parts]

        def _key(self, other):
            return other if isinstance(other, LooseVersion) else LooseVersion(other)

        def __eq__(self, other):
            return self.version == self._key(other).version

        def __lt__(self, other):
            try:
                return self.version < self._key(other).version
            except TypeError:  # int vs str component: compare as strings
                return [str(v) for v in self.version] < [str(v) for v in self._key(other).version]

        def __repr__(self):
            return f"LooseVersion('{self.vstring}')"

    pkg = types.ModuleType('distutils')
    pkg.__path__ = []
    version = types.ModuleType('distutils.version')
    version.LooseVersion = LooseVersion
    pkg.version = version
    return pkg, version


def _distutils_modules():
    """``distutils.version.LooseVersion``, imported by ``basicsr/archs/arch_util.py``; distutils is
    gone on Python >= 3.12 without setuptools."""
    pkg, version = _loose_version_module()
    return {'distutils': pkg, 'distutils.version': version}


@dataclasses.dataclass(frozen=True)
class StandIn:
    name: str
    module: str  # installed only when this module cannot be found ...
    importer: tuple  # ... and basicsr's (module, source fragment) still imports it
    make: object  # () -> {module name: module}
    test: str


STAND_INS = (
    StandIn('functional_tensor', 'torchvision.transforms.functional_tensor',
            ('basicsr.data.degradations', 'torchvision.transforms.functional_tensor'), _functional_tensor_module,
            'tests/test_compat.py::test_functional_tensor_stand_in_needed_or_skipped'),
    StandIn('distutils', 'distutils', ('basicsr.archs.arch_util', 'distutils.version'), _distutils_modules,
            'tests/test_compat.py::test_distutils_stand_in_skipped_when_distutils_exists'),
)


def _silence_import_warnings():
    """basicsr's import emits DeprecationWarnings (scipy.ndimage.filters, distutils) that become
    errors under ``python -W error`` / ``pytest -W error``: silence those messages, and only those."""
    warnings.filterwarnings('ignore', message=r'.*scipy\.ndimage\.filters.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message=r'.*distutils.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message=r'.*LooseVersion.*', category=DeprecationWarning)


# ----------------------------------------------------------------------------- defect checks
def _source_has(*fragments):
    """Defect check: the function being replaced still contains every ``fragment`` in its source."""

    def check(current):
        try:
            source = inspect.getsource(current)
        except (OSError, TypeError):
            return True  # cannot tell: keep the plugin's behaviour
        return all(fragment in source for fragment in fragments)

    return check


def _reads_use_hflip_only(current):
    """Defect check: ``PairedImageDataset.__getitem__`` indexes ``opt['use_hflip']`` (no default)."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    return _source_has("self.opt['use_hflip']")(PairedImageDataset.__getitem__)


def _always(current):
    """Not a defect of basicsr: the plugin's own behaviour (options read once, exact resume)."""
    return True


# ----------------------------------------------------------------------------- the table
@dataclasses.dataclass(frozen=True)
class Patch:
    name: str
    owner: object  # the module or class that holds what is replaced
    attr: str  # the attribute replaced
    make: object  # make(replaced) -> replacement
    why: str
    test: str  # the test that shows it is needed / works
    needed: object = _always  # needed(replaced) -> bool: the defect is present
    aliases: tuple = ()  # other (owner, attribute) names bound to the same function

    @property
    def target(self):
        owner = getattr(self.owner, '__qualname__', None) or self.owner.__name__
        module = getattr(self.owner, '__module__', None) if isinstance(self.owner, type) else None
        return f'{module}:{owner}.{self.attr}' if module else f'{owner}:{self.attr}'


_EXACT = 'the position in the epoch and the RNG states are not kept; a resume restarts the epoch (see exact_resume)'
_EXACT_TEST = 'tests/test_crash_resume.py::test_sigkill_mid_run_and_mid_save_then_auto_resume_equals_uninterrupted'


@functools.lru_cache(maxsize=None)
def patches():
    """The rows, for basicsr 1.4.2 (imports basicsr: call after the stand-ins are in place)."""
    import basicsr.data
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.utils.file_client import LmdbBackend

    from gimsanet_arch.training import run_options
    from gimsanet_arch.data import basicsr_fixes, lmdb_env
    from gimsanet_arch.training import exact_resume, resume, worker_seeds
    return (
        Patch('parse_options', basicsr.utils.options, 'parse_options', lambda replaced: run_options.parse_options,
              'reads the options a second time; rejects --local-rank; starts the process group with NCCL and without '
              "the options' dist_params (a ZeroDivisionError on CPU)",
              'tests/test_compat.py::test_parse_options_takes_the_handed_on_options',
              aliases=((basicsr.train, 'parse_options'), (basicsr.test, 'parse_options'))),
        Patch('load_resume_state', basicsr.train, 'load_resume_state', lambda replaced: resume.load_resume_state,
              'calls torch.cuda.current_device() (fails on CPU); looks for ./experiments, not the run root',
              'tests/test_compat.py::test_resume_patch_needed_on_cpu', _source_has('torch.cuda.current_device()')),
        Patch('create_loaders', basicsr.train, 'create_train_val_dataloader', exact_resume.create_loaders, _EXACT,
              _EXACT_TEST),
        Patch('sampler_iter', EnlargedSampler, '__iter__', exact_resume.sampler_iter, _EXACT, _EXACT_TEST),
        Patch('sampler_set_epoch', EnlargedSampler, 'set_epoch', exact_resume.sampler_set_epoch, _EXACT, _EXACT_TEST),
        Patch('worker_seeds', basicsr.data, 'worker_init_fn', worker_seeds.worker_init_fn,
              "reseeds every worker to the same values each epoch: a sample's augmentation depends on the worker "
              'that loads it, so a resume with DataLoader workers diverges',
              'tests/test_exact_resume_workers.py::test_resume_with_dataloader_workers_equals_uninterrupted',
              _source_has('worker_seed = num_workers * rank + worker_id + seed')),
        Patch('lmdb_shared_envs', LmdbBackend, '__init__', lmdb_env.lmdb_backend_init,
              'opens its own LMDB environments: a second dataset on the same LMDB (train and val, or two val sets) '
              'stops with "already open in this process"',
              'tests/data/test_lmdb_envs.py::test_train_and_val_paired_datasets_on_one_lmdb',
              _source_has('lmdb.open(path')),
        Patch('paired_use_flip', PairedImageDataset, '__init__', basicsr_fixes.accept_use_flip,
              "reads opt['use_hflip'] only; NAFNet's option files say use_flip",
              'tests/test_compat.py::test_paired_dataset_accepts_nafnet_use_flip', _reads_use_hflip_only),
    )


# ----------------------------------------------------------------------------- the helper
def install(patch):
    """Install one row; returns True if installed, False if already there or not needed."""
    current = getattr(patch.owner, patch.attr)
    if getattr(current, '_gimsanet_patch', None) == patch.name:
        return False
    if not patch.needed(current):
        return False
    replacement = patch.make(current)
    replacement.__wrapped__ = current
    replacement._gimsanet_patch = patch.name
    setattr(patch.owner, patch.attr, replacement)
    for alias_owner, alias_attr in patch.aliases:
        if getattr(alias_owner, alias_attr, None) is current:
            setattr(alias_owner, alias_attr, replacement)
    return True


def original_function(obj):
    """``obj`` itself, or what it replaced if it is one of the plugin's replacements."""
    return obj.__wrapped__ if hasattr(obj, '_gimsanet_patch') else obj


def original(name):
    """What row ``name`` replaced (the object now in place when the row is not installed)."""
    patch = next(p for p in patches() if p.name == name)
    return original_function(getattr(patch.owner, patch.attr))


def apply():
    """Install the stand-ins, import basicsr, install the patches; safe to call repeatedly."""
    if os.environ.get('GIMSANET_NO_COMPAT') == '1':  # for tests proving a stand-in is needed
        return APPLIED
    for stand_in in STAND_INS:
        if stand_in.name not in APPLIED:
            needed = not _module_exists(stand_in.module) and _basicsr_source_has(*stand_in.importer)
            if needed:
                sys.modules.update(stand_in.make())
            APPLIED[stand_in.name] = needed
    _silence_import_warnings()
    importlib.import_module('basicsr')
    for patch in patches():
        if patch.name not in APPLIED:
            APPLIED[patch.name] = install(patch)
    return APPLIED
