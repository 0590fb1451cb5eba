"""Loading training states without running what a crafted one carries.

A ``<iter>.state`` is a pickle: loading one with full unpickling runs any function it names, so a
shared option file (``path.resume_state``) or a copied run folder (``--auto_resume`` takes the
newest state) could run code. States are loaded weights-only, with an allow-list of exactly the
Python objects the states of BasicSR and of the plugin hold beyond torch's own list (which already
has tensors, ``OrderedDict`` and ``collections.Counter``, the milestones of ``MultiStepRestartLR``):

* NumPy's ``RandomState.get_state()`` (the ``numpy`` entry of the plugin's RNG states): a
  ``uint32`` array, pickled as ``<multiarray>._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``
  and the ``uint32`` dtype's class. NumPy 1 names the module ``numpy.core.multiarray``, NumPy 2
  ``numpy._core.multiarray``: both names are accepted, so a state written under either resumes
  under either.

Everything else (optimizer and scheduler state dicts, Python's ``random`` state, torch's RNG
tensors, ``gimsanet_cpu_budget``, the exact-resume position) is plain containers, numbers and
tensors. A state that needs any other object is refused with :class:`RefusedStateError`, naming the
file and the object, unless ``trust`` (``--trust-checkpoint`` / ``path.trust_checkpoint: true``):
then it is loaded with full pickle, as checkpoints are (:func:`~.checkpoint.load_checkpoint_file`).
"""
import pickle
import re

import torch


class RefusedStateError(RuntimeError):
    """A training state that needs a Python object outside the allow-list (it could run code)."""

    def __init__(self, path, name):
        self.path, self.name = path, name
        super().__init__(f'training state {path} needs {name} to load, which weights-only loading refuses (a pickle '
                         'can run code); if you trust the file, pass --trust-checkpoint (option files: '
                         'path.trust_checkpoint: true)')


def state_globals():
    """``[(object, 'module.name')]``: what torch's weights-only loader may build besides its own list."""
    import numpy as np
    multiarray = (np._core if hasattr(np, '_core') else np.core).multiarray  # NumPy 2, else 1
    uint32_dtype = type(np.dtype(np.uint32))  # numpy.dtypes.UInt32DType (NumPy >= 1.25), else numpy.dtype
    allowed = [(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
               (multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
               (np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    if uint32_dtype is not np.dtype:
        allowed.append((uint32_dtype, f'{uint32_dtype.__module__}.{uint32_dtype.__name__}'))
    return allowed


def refused_global(err):
    """The object a weights-only load refused (``posix.system``, ``datetime.date``), from torch's
    message; None when the file failed for another reason."""
    text = str(err)
    for pattern in (r'GLOBAL ([\w.]+)', r'Unsupported global: ([\w.]+)', r"but got <class '([\w.]+)'>"):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return None


def unpickler_problem(err):
    """What went wrong, in one line, without torch's advice to load with full pickle (which is
    what this module exists to avoid)."""
    text = str(err)
    found = re.search(r'WeightsUnpickler error: *(.*)', text)
    line = found.group(1).strip() if found and found.group(1).strip() else text.strip().splitlines()[0]
    return line or type(err).__name__


def load_state_file(path, num_gpu=0, trust=False):
    """Load a training state (onto the current GPU when ``num_gpu`` and CUDA is there, else the CPU)
    weights-only with :func:`state_globals`; :class:`RefusedStateError` for anything else, unless
    ``trust``. Other failures (a damaged file) raise ``ValueError`` with one line."""
    if num_gpu and torch.cuda.is_available():
        device = torch.device('cuda', torch.cuda.current_device())
    else:
        device = torch.device('cpu')
    try:
        with torch.serialization.safe_globals(state_globals()):
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        name = refused_global(err)
        if name is None:
            raise ValueError(f'not a readable training state ({unpickler_problem(err)})') from None
        if not trust:
            raise RefusedStateError(path, name) from None
    return torch.load(path, map_location=device, weights_only=False)
