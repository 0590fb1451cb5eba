"""Compatibility shims that let basicsr 1.4.2 run on today's torch / torchvision / numpy / OpenCV.

They are applied by ``import gimsanet_arch`` *before* anything from basicsr is imported, and never
edit site-packages. Every shim checks whether it is needed and is a no-op otherwise, so a future
basicsr release that fixes a hole simply makes the shim skip. ``APPLIED`` records what ran.

Shims in two phases:

* pre-import (must run before ``import basicsr``):
  - ``functional_tensor``: torchvision >= 0.17 removed ``torchvision.transforms.functional_tensor``,
    which ``basicsr/data/degradations.py`` imports at module level (only ``rgb_to_grayscale``).
  - ``distutils``: ``basicsr/archs/arch_util.py`` imports ``distutils.version.LooseVersion``; on
    Python >= 3.12 without setuptools that module does not exist.
  - ``import_warnings``: basicsr's import emits DeprecationWarnings (scipy.ndimage.filters,
    distutils) that turn into errors under ``python -W error`` / ``pytest -W error``.
* post-import (patch basicsr functions in place):
  - ``jpeg_quality``: ``degradations.add_jpg_compression`` passes a float JPEG quality that
    OpenCV 5 rejects.
  - ``train_resume``: ``basicsr.train.load_resume_state`` calls
    ``torch.cuda.current_device()`` and looks for ``experiments/`` relative to the current
    directory instead of the run's root.
  - ``dist``: ``init_dist`` hard-codes NCCL and divides by the GPU count (CPU: zero).
  - ``model_to_device``: ``BaseModel.model_to_device`` passes CUDA ``device_ids`` to DDP, and broadcasts
    buffers on every forward, which hangs rank-0-only validation of nets with buffers.
  - ``parse_options``: PyTorch 2 launchers pass ``--local-rank``; basicsr accepts only
    ``--local_rank``. Also hands ``dist_params``/``num_gpu`` to ``init_dist``.
  - ``atomic_save``: ``save_network`` / ``save_training_state`` write in place; a kill mid-save
    leaves a truncated file. basicsr's ``base_model`` sees a ``torch`` whose ``save`` is atomic.
  - ``training_state``: training states also hold RNG states and the position in the epoch, and a
    resumed run continues the epoch where it stopped (BasicSR restarts it).
"""
import importlib
import importlib.util
import os
import sys
import types
import warnings

APPLIED = {}
# What the post-import shims replaced, so tests can show each one is needed.
ORIGINALS = {}


def _module_exists(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# ----------------------------------------------------------------------------- pre-import shims
def shim_functional_tensor():
    """Provide ``torchvision.transforms.functional_tensor.rgb_to_grayscale`` if it is gone."""
    if _module_exists('torchvision.transforms.functional_tensor'):
        return False
    from torchvision.transforms import functional as tv_functional
    module = types.ModuleType('torchvision.transforms.functional_tensor')
    module.rgb_to_grayscale = tv_functional.rgb_to_grayscale
    module.__doc__ = 'Stand-in created by gimsanet_arch.compat for basicsr 1.4.2.'
    sys.modules['torchvision.transforms.functional_tensor'] = module
    return True


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


def shim_distutils():
    """Provide ``distutils.version.LooseVersion`` where distutils is missing (Python >= 3.12)."""
    if _module_exists('distutils'):
        return False
    pkg, version = _loose_version_module()
    sys.modules['distutils'] = pkg
    sys.modules['distutils.version'] = version
    return True


def shim_import_warnings():
    """Silence the deprecation warnings basicsr's own import emits, and only those."""
    warnings.filterwarnings('ignore', message=r'.*scipy\.ndimage\.filters.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message=r'.*distutils.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message=r'.*LooseVersion.*', category=DeprecationWarning)
    warnings.filterwarnings('ignore', category=DeprecationWarning, module=r'basicsr(\..*)?')
    return True


# ----------------------------------------------------------------------------- post-import shims
def shim_jpeg_quality():
    """Make ``add_jpg_compression`` pass an int quality to OpenCV (OpenCV 5 rejects floats)."""
    from basicsr.data import degradations
    original = degradations.add_jpg_compression
    if getattr(original, '_gimsanet_patched', False):
        return False

    def add_jpg_compression(img, quality=90):
        return original(img, int(round(float(quality))))

    add_jpg_compression._gimsanet_patched = True
    add_jpg_compression.__wrapped__ = original
    degradations.add_jpg_compression = add_jpg_compression
    return True


def shim_train_resume():
    """Replace ``basicsr.train.load_resume_state`` with a CPU-safe, root-aware version."""
    import basicsr.train as basicsr_train
    from gimsanet_arch.utils.resume import load_resume_state
    if basicsr_train.load_resume_state is load_resume_state:
        return False
    ORIGINALS['load_resume_state'] = basicsr_train.load_resume_state
    basicsr_train.load_resume_state = load_resume_state
    return True


def shim_dist():
    """Make ``init_dist`` pick the backend from the device (gloo on CPU, NCCL on GPU)."""
    import basicsr.utils.dist_util as dist_util
    import basicsr.utils.options as options
    from gimsanet_arch.utils.dist import init_dist
    if options.init_dist is init_dist:
        return False
    ORIGINALS['init_dist'] = options.init_dist
    dist_util.init_dist = init_dist
    options.init_dist = init_dist
    return True


def shim_model_to_device():
    """DDP on CPU (no device_ids) and without per-forward buffer broadcasts."""
    from basicsr.models.base_model import BaseModel
    from gimsanet_arch.utils.dist import model_to_device
    if BaseModel.model_to_device is model_to_device:
        return False
    ORIGINALS['model_to_device'] = BaseModel.model_to_device
    BaseModel.model_to_device = model_to_device
    return True


def shim_paired_dataset_flip_keys():
    """BasicSR's ``PairedImageDataset`` reads ``opt['use_hflip']`` and ``opt['use_rot']`` (KeyError if
    absent); NAFNet's official option files, which use this type, spell them ``use_flip`` /
    ``use_rot``. Accept NAFNet's spelling (``use_hflip`` wins when both are given)."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    original = PairedImageDataset.__init__
    if getattr(original, '_gimsanet_patched', False):
        return False

    def __init__(self, opt):
        if opt.get('phase') == 'train':
            opt.setdefault('use_hflip', opt.get('use_flip', False))
            opt.setdefault('use_rot', False)
        original(self, opt)

    __init__._gimsanet_patched = True
    __init__.__wrapped__ = original
    PairedImageDataset.__init__ = __init__
    return True


def normalize_local_rank_argv(argv):
    """Rewrite ``--local-rank[=N]`` (PyTorch 2 launchers) to ``--local_rank[=N]``."""
    out = []
    for arg in argv:
        if arg == '--local-rank':
            arg = '--local_rank'
        elif arg.startswith('--local-rank='):
            arg = '--local_rank=' + arg.split('=', 1)[1]
        out.append(arg)
    return out


def _dist_params_from_argv(argv):
    """Read ``num_gpu`` and ``dist_params`` from the ``-opt`` file (basicsr's ``init_dist`` is
    called without them for the pytorch launcher)."""
    import yaml
    if '-opt' not in argv or argv.index('-opt') + 1 >= len(argv):
        return {}
    try:
        with open(argv[argv.index('-opt') + 1]) as f:
            opt = yaml.safe_load(f) or {}
        if '--force_yml' in argv:  # e.g. --force_yml dist_params:backend=gloo
            from gimsanet_arch.utils.options_check import apply_force_yml
            forced = []
            for arg in argv[argv.index('--force_yml') + 1:]:
                if arg.startswith('--'):
                    break
                forced.append(arg)
            apply_force_yml(opt, [e for e in forced if e.startswith(('num_gpu', 'dist_params'))])
    except Exception:  # noqa: BLE001 - basicsr (or our option check) reports the real error
        return {}
    params = dict(opt.get('dist_params') or {})
    params['num_gpu'] = opt.get('num_gpu')
    return params


def shim_parse_options():
    """Wrap basicsr's ``parse_options``: accept ``--local-rank`` and pass ``dist_params`` on."""
    import basicsr.utils.options as options
    from gimsanet_arch.utils import dist as plugin_dist
    original = options.parse_options
    if getattr(original, '_gimsanet_patched', False):
        return False

    def parse_options(root_path, is_train=True):
        sys.argv[:] = normalize_local_rank_argv(sys.argv)
        plugin_dist.PENDING_DIST_PARAMS.clear()
        plugin_dist.PENDING_DIST_PARAMS.update(_dist_params_from_argv(sys.argv))
        return original(root_path, is_train)

    parse_options._gimsanet_patched = True
    parse_options.__wrapped__ = original
    options.parse_options = parse_options
    for modname in ('basicsr.train', 'basicsr.test'):
        mod = sys.modules.get(modname)
        if mod is not None and getattr(mod, 'parse_options', None) is original:
            mod.parse_options = parse_options
    return True


def shim_atomic_save():
    """Write checkpoints and training states atomically (temp file + rename): BasicSR writes in
    place, so a kill during a save leaves a truncated file that ``--auto_resume`` would pick up."""
    import basicsr.models.base_model as base_model
    from gimsanet_arch.utils.checkpoint import atomic_torch_save
    if getattr(base_model.torch, '_gimsanet_atomic', False):
        return False

    class _TorchWithAtomicSave(types.ModuleType):
        """``torch`` as seen from basicsr's base_model, with ``save`` made atomic."""

        def __getattr__(self, name):
            return getattr(_torch, name)

    import torch as _torch
    proxy = _TorchWithAtomicSave('torch')
    proxy.save = atomic_torch_save
    proxy._gimsanet_atomic = True
    base_model.torch = proxy
    return True


def shim_training_state():
    """Exact resume for every BasicSR model: RNG states and the position in the epoch go into each
    training state, and the resumed epoch continues where it stopped (see ``utils/training_state``)."""
    from gimsanet_arch.utils.training_state import install
    return install()


PRE_IMPORT = (shim_functional_tensor, shim_distutils, shim_import_warnings)
POST_IMPORT = (shim_jpeg_quality, shim_parse_options, shim_dist, shim_model_to_device, shim_train_resume,
               shim_atomic_save, shim_paired_dataset_flip_keys, shim_training_state)


def apply():
    """Apply every shim once; safe to call repeatedly."""
    if os.environ.get('GIMSANET_NO_COMPAT') == '1':  # for tests proving a shim is needed
        return APPLIED
    for shim in PRE_IMPORT:
        if shim.__name__ not in APPLIED:
            APPLIED[shim.__name__] = shim()
    importlib.import_module('basicsr')
    for shim in POST_IMPORT:
        if shim.__name__ not in APPLIED:
            APPLIED[shim.__name__] = shim()
    return APPLIED
