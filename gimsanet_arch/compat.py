"""What the plugin changes in basicsr, declared in one place.

``import gimsanet_arch`` calls :func:`apply` before anything else touches basicsr. It never edits
site-packages. Two tables:

* :data:`STAND_INS` — modules basicsr 1.4.2 imports that today's stack no longer has; they must
  exist before ``import basicsr``.
* :data:`PATCHES` — every BasicSR function (or module attribute) the plugin replaces: what it
  replaces, why, which basicsr versions need it, the test that shows it, and a check for the
  defect. :func:`install` applies a row only when its check finds the defect in the installed
  basicsr, so on a basicsr that fixed it the row is a no-op.

One idempotence rule: an installed replacement carries ``_gimsanet_patch = <row name>``, and a row
whose target already carries its name is skipped. One way to reach what was replaced:
:func:`original` (the replacement's ``__wrapped__``). The bodies live in the module of their
concern (training/, data/, options.py); this module only declares and installs them.
"""
import dataclasses
import importlib
import importlib.util
import inspect
import os
import sys
import types
import warnings

APPLIED = {}  # row name -> True (installed) / False (not needed here)


def _module_exists(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


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
    module: str  # installed only when this module cannot be found
    make: object  # () -> {module name: module}
    test: str


STAND_INS = (
    StandIn('functional_tensor', 'torchvision.transforms.functional_tensor', _functional_tensor_module,
            'tests/test_compat.py::test_functional_tensor_stand_in_needed_or_skipped'),
    StandIn('distutils', 'distutils', _distutils_modules,
            'tests/test_compat.py::test_distutils_stand_in_skipped_when_distutils_exists'),
)


def _silence_import_warnings():
    """basicsr's import emits DeprecationWarnings (scipy.ndimage.filters, distutils) that become
    errors under ``python -W error`` / ``pytest -W error``: silence those, and only those."""
    warnings.filterwarnings('ignore', message=r'.*scipy\.ndimage\.filters.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message=r'.*distutils.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message=r'.*LooseVersion.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', category=DeprecationWarning, module=r'basicsr(\..*)?')


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


def _float_jpeg_quality_fails(current):
    """Defect check: the function fails on a float quality (as with OpenCV 5)."""
    import numpy as np
    try:
        current(np.zeros((8, 8, 3), np.float32), 90.5)
        return False
    except Exception:  # noqa: BLE001 - whatever OpenCV raises for a float quality
        return True


def _reads_use_hflip_only(current):
    """Defect check: ``PairedImageDataset.__getitem__`` indexes ``opt['use_hflip']`` (no default)."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    return _source_has("self.opt['use_hflip']")(PairedImageDataset.__getitem__)


def _always(current):
    """Not a defect of basicsr: the plugin's behaviour (options read once, exact resume)."""
    return True


# ----------------------------------------------------------------------------- the table
@dataclasses.dataclass(frozen=True)
class Patch:
    name: str
    target: str  # 'module:Attribute.path' of what is replaced
    make: str  # 'module:factory'; factory(replaced) -> replacement
    why: str
    versions: str  # basicsr versions known to need it
    test: str  # the test that shows it is needed / works
    needed: object = _always  # needed(replaced) -> bool: the defect is present
    aliases: tuple = ()  # other 'module:attribute' names bound to the same function


_EXACT = 'training state lacks RNG states and the position in the epoch; resume restarts the epoch'
_EXACT_TEST = 'tests/test_crash_resume.py::test_sigkill_mid_run_and_mid_save_then_auto_resume_equals_uninterrupted'


def _EXACT_DEFECT(current):
    """Defect check of the exact-resume rows: BasicSR's own ``save_training_state`` writes the plain
    state (no RNG states, no position in the epoch)."""
    return _source_has('torch.save(state, save_path)')(original('save_training_state'))


def _save_in_place(current):
    """Defect check: BasicSR's ``save_network`` calls ``torch.save`` on the final path."""
    from basicsr.models.base_model import BaseModel
    return _source_has('torch.save(save_dict, save_path)')(original_function(BaseModel.save_network))

PATCHES = (
    Patch('jpeg_quality', 'basicsr.data.degradations:add_jpg_compression',
          'gimsanet_arch.data.basicsr_fixes:int_jpeg_quality',
          'passes a float JPEG quality, which OpenCV 5 rejects', '1.4.2',
          'tests/test_compat.py::test_jpeg_quality_patch', _float_jpeg_quality_fails),
    Patch('parse_options', 'basicsr.utils.options:parse_options',
          'gimsanet_arch.compat:_make_parse_options',
          'rejects --local-rank; init_dist gets no dist_params for torchrun; the plugin reads options once',
          '1.4.2', 'tests/test_compat.py::test_local_rank_dash_accepted',
          aliases=('basicsr.train:parse_options', 'basicsr.test:parse_options')),
    Patch('init_dist', 'basicsr.utils.dist_util:init_dist', 'gimsanet_arch.compat:_make_init_dist',
          'hard-codes NCCL and divides by the GPU count (CPU: ZeroDivisionError)', '1.4.2',
          'tests/test_compat.py::test_dist_patch_needed_on_cpu', _source_has('torch.cuda.set_device(rank % num_gpus)'),
          aliases=('basicsr.utils.options:init_dist', )),
    Patch('model_to_device', 'basicsr.models.base_model:BaseModel.model_to_device',
          'gimsanet_arch.compat:_make_model_to_device',
          'gives DDP CUDA device_ids on CPU; broadcasts buffers each forward (rank-0 validation hangs)', '1.4.2',
          'tests/test_compat.py::test_model_to_device_patch_needed_for_cpu_ddp',
          _source_has('device_ids=[torch.cuda.current_device()]')),
    Patch('load_resume_state', 'basicsr.train:load_resume_state', 'gimsanet_arch.compat:_make_load_resume_state',
          'calls torch.cuda.current_device() (fails on CPU); looks for ./experiments, not the run root', '1.4.2',
          'tests/test_compat.py::test_resume_patch_needed_on_cpu', _source_has('torch.cuda.current_device()')),
    Patch('atomic_save', 'basicsr.models.base_model:torch', 'gimsanet_arch.training.checkpoint:torch_with_atomic_save',
          'checkpoints and training states are written in place: a kill mid-save leaves a truncated file',
          '1.4.2', 'tests/test_compat.py::test_atomic_save_keeps_previous_file', _save_in_place),
    Patch('paired_use_flip', 'basicsr.data.paired_image_dataset:PairedImageDataset.__init__',
          'gimsanet_arch.data.basicsr_fixes:accept_use_flip',
          "reads opt['use_hflip'] only; NAFNet's option files say use_flip", '1.4.2',
          'tests/test_compat.py::test_paired_dataset_accepts_nafnet_use_flip', _reads_use_hflip_only),
    Patch('lmdb_shared_envs', 'basicsr.utils.file_client:LmdbBackend.__init__',
          'gimsanet_arch.data.lmdb_env:lmdb_backend_init',
          'opens its own LMDB environments: a second dataset on the same LMDB (train and val, or two val sets) '
          'stops with "already open in this process"', '1.4.2',
          'tests/data/test_lmdb_envs.py::test_train_and_val_paired_datasets_on_one_lmdb',
          _source_has('lmdb.open(path')),
    Patch('worker_seeds', 'basicsr.data:worker_init_fn', 'gimsanet_arch.training.worker_seeds:worker_init_fn',
          "reseeds every worker to the same values each epoch: a sample's augmentation depends on the worker that "
          'loads it, so a resume with DataLoader workers diverges', '1.4.2',
          'tests/test_exact_resume_workers.py::test_resume_with_dataloader_workers_equals_uninterrupted',
          _source_has('worker_seed = num_workers * rank + worker_id + seed')),
    # exact resume: one replacement per place BasicSR's loop passes through
    *(Patch(name, target, f'gimsanet_arch.training.exact_resume:{factory}', why, '1.4.2', _EXACT_TEST, _EXACT_DEFECT)
      for name, target, factory, why in (
          ('save_training_state', 'basicsr.models.base_model:BaseModel.save_training_state', 'save_training_state',
           _EXACT),
          ('resume_training', 'basicsr.models.base_model:BaseModel.resume_training', 'resume_training', _EXACT),
          ('update_learning_rate', 'basicsr.models.base_model:BaseModel.update_learning_rate', 'update_learning_rate',
           _EXACT),
          ('validation_keeps_rng', 'basicsr.models.base_model:BaseModel.validation', 'validation',
           'validation draws random numbers, so a resumed run (which skips it) diverges'),
          ('sampler_iter', 'basicsr.data.data_sampler:EnlargedSampler.__iter__', 'sampler_iter', _EXACT),
          ('sampler_set_epoch', 'basicsr.data.data_sampler:EnlargedSampler.set_epoch', 'sampler_set_epoch', _EXACT),
          ('create_loaders', 'basicsr.train:create_train_val_dataloader', 'create_loaders', _EXACT))),
)


# factories whose bodies take collaborators from other rooms (kept here so those rooms do not
# import each other)
def _make_parse_options(replaced):
    from gimsanet_arch.options import parse_options_taking_handed_on
    from gimsanet_arch.training.dist import init_dist
    return parse_options_taking_handed_on(replaced, init_dist)


def _make_init_dist(replaced):
    from gimsanet_arch.training.dist import init_dist
    return init_dist


def _make_model_to_device(replaced):
    from gimsanet_arch.training.dist import model_to_device
    return model_to_device


def _make_load_resume_state(replaced):
    from gimsanet_arch.training.resume import load_resume_state
    return load_resume_state


# ----------------------------------------------------------------------------- the helper
def _resolve(dotted):
    """'module:A.b' -> (owner object, attribute name)."""
    module_name, _, path = dotted.partition(':')
    owner = importlib.import_module(module_name)
    *parents, attr = path.split('.')
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, attr


def install(patch):
    """Install one row; returns True if installed, False if already there or not needed."""
    owner, attr = _resolve(patch.target)
    current = getattr(owner, attr)
    if getattr(current, '_gimsanet_patch', None) == patch.name:
        return False
    if not patch.needed(current):
        return False
    factory_owner, factory_name = _resolve(patch.make)
    replacement = getattr(factory_owner, factory_name)(current)
    replacement.__wrapped__ = current
    replacement._gimsanet_patch = patch.name
    setattr(owner, attr, replacement)
    for alias in patch.aliases:
        alias_owner, alias_attr = _resolve(alias)
        if getattr(alias_owner, alias_attr, None) is current:
            setattr(alias_owner, alias_attr, replacement)
    return True


def original_function(obj):
    """``obj`` itself, or what it replaced if it is one of the plugin's replacements."""
    return obj.__wrapped__ if hasattr(obj, '_gimsanet_patch') else obj


def original(name):
    """What row ``name`` replaced (the object now in place when the row is not installed)."""
    patch = next(p for p in PATCHES if p.name == name)
    owner, attr = _resolve(patch.target)
    return original_function(getattr(owner, attr))


def apply():
    """Install the stand-ins, import basicsr, install the patches; safe to call repeatedly."""
    if os.environ.get('GIMSANET_NO_COMPAT') == '1':  # for tests proving a stand-in is needed
        return APPLIED
    for stand_in in STAND_INS:
        if stand_in.name not in APPLIED:
            needed = not _module_exists(stand_in.module)
            if needed:
                sys.modules.update(stand_in.make())
            APPLIED[stand_in.name] = needed
    _silence_import_warnings()
    importlib.import_module('basicsr')
    for patch in PATCHES:
        if patch.name not in APPLIED:
            APPLIED[patch.name] = install(patch)
    return APPLIED
