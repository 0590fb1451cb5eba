"""Distributed setup that works with NCCL on GPUs and gloo on CPU.

basicsr 1.4.2's ``init_dist`` hard-codes NCCL and calls ``torch.cuda.set_device(rank % 0)`` on a
CPU machine; its ``BaseModel.model_to_device`` hands CUDA ``device_ids`` to DDP. The plugin's CLI
starts the process group with :func:`init_dist` before BasicSR's pipeline runs, and DenoiseModel
wraps its networks with :func:`wrap_for_training`.
"""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DataParallel, DistributedDataParallel

def choose_backend(num_gpu=None, backend=None):
    """NCCL when CUDA is used, gloo on CPU, unless ``backend`` says otherwise.

    BasicSR-era option files all say ``backend: nccl``; on a CPU run (``num_gpu: 0`` or no CUDA)
    NCCL cannot work, so that one case falls back to gloo with a warning instead of failing.
    """
    use_cuda = torch.cuda.is_available() and num_gpu not in (0, '0')
    if backend == 'nccl' and not use_cuda:
        import warnings
        warnings.warn('dist_params.backend is nccl but this run uses the CPU: using gloo')
        return 'gloo'
    if backend:
        return backend
    return 'nccl' if use_cuda else 'gloo'


def init_dist(launcher, backend=None, num_gpu=None, **kwargs):
    """Start the process group: the backend follows the device (:func:`choose_backend`);
    ``num_gpu``, ``backend`` and ``port`` / ``timeout`` come from the options' ``dist_params``.
    An existing group is kept (the CLI starts it before BasicSR's pipeline runs)."""
    backend = choose_backend(num_gpu, backend)
    if launcher == 'slurm':
        _init_slurm_env(kwargs.pop('port', None))
    elif launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher} (use none, pytorch or slurm)')
    kwargs.pop('port', None)
    if backend == 'nccl':
        local_rank = int(os.environ.get('LOCAL_RANK', int(os.environ.get('RANK', 0)) % torch.cuda.device_count()))
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        store = _agent_store_of_this_attempt(kwargs.get('timeout'))
        if store is not None:
            kwargs.update(store=store, rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))
        dist.init_process_group(backend=backend, **kwargs)


def _agent_store_of_this_attempt(timeout=None):
    """torchrun's store, under a prefix of its own for each restart of the worker group (None when
    not run by torchrun).

    PyTorch 2.x hands every attempt the agent's store without a per-attempt prefix ("a new
    TCPStore for every retry"), but its static and c10d rendezvous keep one store across
    restarts: the restarted workers then read the addresses that the killed workers published,
    and gloo stops with ``connectFullMesh failed ... Connection refused``. A prefix per
    ``TORCHELASTIC_RESTART_COUNT`` (what PyTorch itself did up to 2.3) keeps attempts apart."""
    if os.environ.get('TORCHELASTIC_USE_AGENT_STORE') != str(True) or 'TORCHELASTIC_RESTART_COUNT' not in os.environ:
        return None
    from datetime import timedelta
    from torch.distributed.constants import default_pg_timeout
    timeout = timeout if isinstance(timeout, timedelta) else default_pg_timeout
    store = dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), is_master=False, timeout=timeout)
    return dist.PrefixStore(f'/gimsanet/attempt_{os.environ["TORCHELASTIC_RESTART_COUNT"]}', store)


def _init_slurm_env(port=None):
    import subprocess
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    gpus = max(torch.cuda.device_count(), 1)
    addr = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ['MASTER_PORT'] = str(port or os.environ.get('MASTER_PORT', 29500))
    os.environ['MASTER_ADDR'] = addr
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = str(proc_id % gpus)
    os.environ['RANK'] = str(proc_id)


def wrap_for_training(net, opt, device):
    """``net`` on ``device``, wrapped for the run (what ``BaseModel.model_to_device`` does, fixed).

    DDP gets ``device_ids`` only on CUDA, and ``broadcast_buffers=False`` by default: our nets keep
    fixed (never-updated) buffers, and BasicSR validates on rank 0 alone through the wrapper, where
    a per-forward buffer broadcast would wait forever for the other ranks. Set
    ``broadcast_buffers: true`` at the top level of the options for nets with BatchNorm.
    """
    net = net.to(device)
    if opt.get('dist'):
        device_ids = [torch.cuda.current_device()] if device.type == 'cuda' else None
        net = DistributedDataParallel(
            net,
            device_ids=device_ids,
            find_unused_parameters=opt.get('find_unused_parameters', False),
            broadcast_buffers=opt.get('broadcast_buffers', False))
    elif (opt.get('num_gpu') or 0) > 1:
        net = DataParallel(net)
    return net
