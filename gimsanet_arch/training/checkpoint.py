"""Checkpoint I/O: atomic saves and loads that explain what does not match."""
import errno
import os
import os.path as osp
import pickle
import shutil
import tempfile

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the keys."""


class DiskFullError(Exception):
    """A checkpoint or training state could not be saved: no space left on the device (or quota).

    BasicSR's own ``save_network`` catches every ``Exception``, retries three times and then trains
    on without saving ("Just ignore it"), which on a full disk means days of training that no
    checkpoint keeps. DenoiseModel saves through its own methods
    (:mod:`gimsanet_arch.models.training_state`), which let this error end the run; the CLI reports
    it in one line. The previous files are untouched (the save was atomic)."""

    def __init__(self, path, reason):
        free = _free_bytes(osp.dirname(osp.abspath(path)))
        where = f', {free // 1024} KiB free' if free is not None else ''
        super().__init__(f'no space left on device while saving {path} ({reason}{where}); the previous '
                         'checkpoints and training states are kept: free some space, then rerun with --auto_resume')


_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC)}


def _disk_full_reason(err):
    """The ``OSError`` text when ``err`` or what it wraps is a full disk (torch.save turns the
    ``OSError`` of its file writes into a ``RuntimeError``, with the ``OSError`` as context)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
            return err.strerror or str(err)
        err = err.__cause__ or err.__context__
    return None


def _free_bytes(folder):
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def atomic_torch_save(obj, path):
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``: a kill
    during the save leaves the previous file (or none), never a truncated one (only a hidden
    ``.<name>.*.tmp`` that ``--auto_resume`` ignores and removes). A full disk raises
    :class:`DiskFullError` after removing the temp file."""
    folder = osp.dirname(osp.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException as err:
        if tmp is not None and osp.exists(tmp):
            os.remove(tmp)
        reason = _disk_full_reason(err)
        if reason is not None:
            raise DiskFullError(path, reason) from err
        raise


def _publish(tmp, path):
    """Give the finished temp file its final name (the one step that makes a save visible)."""
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; torch.save would honour the umask
    os.replace(tmp, path)
    _fsync_dir(osp.dirname(osp.abspath(path)))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _refused_global(err):
    """The Python object a weights-only load refused (e.g. ``os.system``), from torch's message."""
    from gimsanet_arch.training.safe_state import refused_global
    return refused_global(err)


def trusted(opt):
    """Whether a run's options let checkpoints and training states load with full pickle:
    ``path.trust_checkpoint: true`` or ``--trust-checkpoint``. Inside BasicSR's pipeline the flag is
    at the top level of the options (:func:`gimsanet_arch.training.run_options.parse_options` moves
    it there: BasicSR makes a folder of every ``path`` value it does not know)."""
    return bool(opt.get('trust_checkpoint') or (opt.get('path') or {}).get('trust_checkpoint'))


def load_checkpoint_file(path, trust=False):
    """Load a checkpoint onto the CPU, safely: only tensors and plain containers
    (``weights_only=True``), or the tensors of a ``.safetensors`` file. A pickle that needs any other
    Python object (which could run code while loading) is refused with a :class:`CheckpointError`
    naming the file and the object, unless ``trust`` (``--trust-checkpoint`` /
    ``path.trust_checkpoint: true``): then it is loaded with full pickle."""
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    if path.endswith('.safetensors'):
        from gimsanet_arch.training.safetensors_io import load_safetensors_checkpoint
        return load_safetensors_checkpoint(path)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        if _refused_global(err) is None:  # not a pickle at all (a text file, another format)
            from gimsanet_arch.training.safe_state import unpickler_problem  # never torch's advice to load unsafely
            raise CheckpointError(f'cannot read checkpoint {path}: not a PyTorch checkpoint '
                                  f'({unpickler_problem(err)})') from None
        if not trust:
            raise CheckpointError(
                f'checkpoint {path} needs {_refused_global(err)} to load, which weights-only loading refuses (a '
                'pickle can run code); if you trust the file, pass --trust-checkpoint (option files: '
                'path.trust_checkpoint: true)') from None
    except Exception as err:  # noqa: BLE001  (a text file, a truncated zip, ...: one line naming the file)
        raise CheckpointError(f'cannot read checkpoint {path}: not a PyTorch checkpoint '
                              f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})') from None
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f'cannot read checkpoint {path}: {err}') from None


def extract_state_dict(ckpt, path, param_key='params'):
    """Pick the network weights out of a checkpoint dict.

    ``param_key`` missing falls back to ``params`` / ``params_ema`` (BasicSR issues #253/#606),
    and a bare state_dict is accepted as is."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path} is not a checkpoint dict (got {type(ckpt).__name__})')
    if param_key is not None and param_key in ckpt:
        state = ckpt[param_key]
    elif all(torch.is_tensor(v) for v in ckpt.values()):
        state = ckpt
    else:
        for alternative in ('params', 'params_ema', 'state_dict', 'model'):
            if alternative in ckpt and isinstance(ckpt[alternative], dict):
                state = ckpt[alternative]
                break
        else:
            raise CheckpointError(f'{path} has no "{param_key}" weights; its keys are: {", ".join(map(str, ckpt))}')
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}


def describe_mismatch(model_state, loaded, limit=8):
    """Human-readable differences between two state_dicts ('' when they match)."""
    missing = sorted(set(model_state) - set(loaded))
    unexpected = sorted(set(loaded) - set(model_state))
    shapes = [f'{k}: network {tuple(model_state[k].shape)} vs file {tuple(loaded[k].shape)}'
              for k in sorted(set(model_state) & set(loaded)) if model_state[k].shape != loaded[k].shape]
    lines = []
    for title, items in (('missing in file', missing), ('unexpected in file', unexpected), ('shape mismatch', shapes)):
        if items:
            more = f' (+{len(items) - limit} more)' if len(items) > limit else ''
            lines.append(f'{title} ({len(items)}): {"; ".join(items[:limit])}{more}')
    return ' | '.join(lines)


def load_network_checked(net, path, strict=True, param_key='params', logger=None, trust=False):
    """Load weights into ``net`` (on CPU first). With ``strict`` any difference is one
    :class:`CheckpointError` listing the differing keys; without it, matching keys are loaded.
    ``trust``: see :func:`load_checkpoint_file`."""
    loaded = extract_state_dict(load_checkpoint_file(path, trust=trust), path, param_key)
    model_state = net.state_dict()
    diff = describe_mismatch(model_state, loaded)
    if diff and strict:
        raise CheckpointError(f'checkpoint {path} does not match {type(net).__name__}: {diff}')
    if diff:
        if logger:
            logger.warning(f'Loading {path} non-strictly: {diff}')
        loaded = {k: v for k, v in loaded.items() if k in model_state and model_state[k].shape == v.shape}
    net.load_state_dict(loaded, strict=strict)
    if logger:
        logger.info(f'Loaded {type(net).__name__} from {path} [{param_key}]')
    return net
