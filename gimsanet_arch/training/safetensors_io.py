"""BasicSR checkpoints as ``.safetensors`` files: tensors only, so loading one can never run code.

BasicSR saves ``{'params': state_dict}`` (and ``'params_ema'``); safetensors holds one flat mapping
of names to tensors plus string metadata. The mapping used here:

* one group (``params`` only, as the shipped weights): the bare state_dict keys, as spandrel,
  chaiNNer and traiNNer-redux read them, with metadata ``basicsr_param_key: params``;
* several groups (``params`` and ``params_ema``): every key prefixed ``<group>.``, with metadata
  ``basicsr_param_keys: params,params_ema``.

A file without that metadata (written by another tool) loads as a bare state_dict.
"""
import os
import os.path as osp

import torch

SINGLE_KEY = 'basicsr_param_key'
GROUP_KEYS = 'basicsr_param_keys'


def _state(group_name, state_dict):
    """Contiguous CPU tensors (safetensors stores dense row-major data only), one line on a non-tensor."""
    out = {}
    for key, value in state_dict.items():
        if not torch.is_tensor(value):
            raise ValueError(f'{group_name}.{key} is a {type(value).__name__}, not a tensor: safetensors holds tensors only')
        out[key] = value.detach().to('cpu').contiguous()
    return out


def save_safetensors_checkpoint(groups, path, metadata=None):
    """Write ``{'params': state_dict, ...}`` to ``path`` (atomically: a temporary file renamed)."""
    from safetensors.torch import save_file
    if not groups:
        raise ValueError('nothing to save: no parameter group')
    meta = {'format': 'pt'}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    if len(groups) == 1:
        (name, state_dict), = groups.items()
        tensors = _state(name, state_dict)
        meta[SINGLE_KEY] = name
    else:
        tensors = {}
        for name, state_dict in groups.items():
            tensors.update({f'{name}.{k}': v for k, v in _state(name, state_dict).items()})
        meta[GROUP_KEYS] = ','.join(groups)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp')
    try:
        # shared storage (tied weights) is saved as separate copies: clone every tensor
        save_file({k: v.clone() for k, v in tensors.items()}, tmp, metadata=meta)
        from gimsanet_arch.training.checkpoint import _umask
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file (the writer makes it private)
        os.replace(tmp, path)
    except Exception as err:
        from gimsanet_arch.training.checkpoint import DiskFullError, _disk_full_reason
        reason = _disk_full_reason(err)
        if reason is not None:
            raise DiskFullError(path, reason) from err
        raise
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def load_safetensors_checkpoint(path):
    """``{'params': state_dict, ...}`` from a file written by :func:`save_safetensors_checkpoint`, or
    the bare state_dict of any other ``.safetensors`` file; CheckpointError naming a bad file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    from gimsanet_arch.training.checkpoint import CheckpointError
    try:
        with safe_open(path, framework='pt') as f:
            meta = f.metadata() or {}
        tensors = load_file(path, device='cpu')
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f'cannot read checkpoint {path}: not a valid .safetensors file ({err})') from None
    if meta.get(SINGLE_KEY):
        return {meta[SINGLE_KEY]: tensors}
    if meta.get(GROUP_KEYS):
        groups = {}
        for name in meta[GROUP_KEYS].split(','):
            prefix = name + '.'
            groups[name] = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        return groups
    return tensors
