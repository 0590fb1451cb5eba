"""Exact resume: RNG states and the position inside the epoch, saved in every training state.

BasicSR 1.4.2 saves only ``epoch``, ``iter``, optimizers and schedulers. On resume its train loop
restarts the resumed epoch's sampler order from the beginning (the batches already trained in that
epoch are seen again) and every random generator starts from ``manual_seed + rank``, so a resumed
run follows a different trajectory from an uninterrupted one.

These shims (installed by :mod:`gimsanet_arch.compat` for every BasicSR model) close that gap:

* ``BaseModel.save_training_state`` also stores, per rank, the Python / NumPy / torch (CPU and
  CUDA) RNG states and how many batches of the current epoch were consumed (``data_position``).
  In distributed runs the RNG states of all ranks are gathered, and rank 0 writes the file
  (atomically, like BasicSR's other saves through :func:`~gimsanet_arch.training.checkpoint.atomic_torch_save`).
* ``BaseModel.resume_training`` arms the train sampler: when BasicSR's loop asks it for the resumed
  epoch's indices, it restores the RNG states and drops the indices of the batches already
  trained, so the next batch, its random crop/flip/noise and everything after are the ones the
  uninterrupted run saw.
* ``BaseModel.validation`` runs with the RNG states saved and restored around it, so validating
  (which BasicSR does after a save, and a resumed run does not repeat) does not shift the
  training randomness.

Exact with the default CPU prefetcher, with or without DataLoader workers: the train sampler's
indices carry their position in the epoch, from which the workers seed every sample
(:mod:`gimsanet_arch.training.worker_seeds`). With ``prefetch_mode: cuda`` the next batch is loaded
before the save. A state from an older run without these fields resumes the BasicSR way (epoch
restarted), with a warning.
"""
import random
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist

from gimsanet_arch.training.worker_seeds import positioned

FORMAT_VERSION = 1


class _Progress:
    """Where the training loop is: set from BasicSR's loop through the shims below."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.last_iter = 0  # last iteration whose learning rate was set (i.e. trained)
        self.epoch = None
        self.epoch_start_iter = 0
        self.sampler = None
        self.loader = None
        self.pending = None  # armed resume: dict(epoch, skip_batches, rng)


PROGRESS = _Progress()


# ----------------------------------------------------------------------------- RNG states
def capture_rng_states():
    states = {
        'python': random.getstate(),
        'numpy': np.random.get_state(),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states):
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'].cpu())
    cuda = states.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        else:
            warnings.warn(f'CUDA RNG states saved for {len(cuda)} devices, {torch.cuda.device_count()} visible: '
                          'CUDA RNG not restored')


def _dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_rng_states():
    """RNG states of every rank (a collective in distributed runs: every rank must call it)."""
    mine = capture_rng_states()
    rank, world_size = _dist_info()
    if world_size == 1:
        return [mine]
    gathered = [None] * world_size
    dist.all_gather_object(gathered, mine)
    return gathered


# ----------------------------------------------------------------------------- data position
def data_position(current_iter):
    """How far into the current epoch the loop is, or None when no train loader is known."""
    loader = PROGRESS.loader
    if loader is None or PROGRESS.epoch is None:
        return None
    sampler = PROGRESS.sampler
    return {
        'epoch': PROGRESS.epoch,
        'batches_done': int(current_iter - PROGRESS.epoch_start_iter),
        'batch_size': int(loader.batch_size or 1),
        'sampler_len': int(len(sampler)) if sampler is not None else None,
        'world_size': _dist_info()[1],
    }


def build_state(model, epoch, current_iter, rng_states):
    """BasicSR's training-state dict plus the exact-resume fields."""
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in model.optimizers],
             'schedulers': [s.state_dict() for s in model.schedulers]}
    extra = getattr(model, 'extra_training_state', None)
    if callable(extra):  # model-specific fields, e.g. DenoiseModel's CPU budget count
        state.update(extra())
    state['gimsanet_resume'] = {
        'version': FORMAT_VERSION,
        'rng_states': rng_states,
        'data_position': data_position(current_iter),
    }
    return state


def write_training_state(self, epoch, current_iter):
    """``BaseModel.save_training_state`` with the exact-resume fields (called by every rank: the RNG
    states are gathered; rank 0 writes, atomically)."""
    import os
    from basicsr.utils import get_root_logger
    from gimsanet_arch.training.checkpoint import atomic_torch_save
    if current_iter == -1:
        return
    rng_states = gather_rng_states()
    if _dist_info()[0] != 0:
        return
    state = build_state(self, epoch, current_iter, rng_states)
    save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
    for attempt in range(3):  # BasicSR retries too (network file systems)
        try:
            atomic_torch_save(state, save_path)
            return
        except OSError as err:
            get_root_logger().warning(f'Save training state error: {err}, remaining retry times: {2 - attempt}')
            time.sleep(1)
    get_root_logger().warning(f'Still cannot save {save_path}. Just ignore it.')


def arm_resume(resume_state):
    """Prepare the train sampler to continue where ``resume_state`` stopped (see module doc)."""
    from basicsr.utils import get_root_logger
    logger = get_root_logger()
    extra = resume_state.get('gimsanet_resume') if isinstance(resume_state, dict) else None
    PROGRESS.last_iter = int(resume_state['iter'])
    if not extra:
        logger.warning('Training state has no RNG/data position (saved by plain BasicSR): the resumed epoch '
                       'restarts from its first batch and random streams restart from the seed.')
        return
    rank, world_size = _dist_info()
    rng_states = extra.get('rng_states') or []
    rng = rng_states[rank] if len(rng_states) == world_size else None
    if rng is None:
        logger.warning(f'Training state holds RNG states of {len(rng_states)} rank(s), this run has {world_size}: '
                       'random streams restart from the seed.')
    position = extra.get('data_position')
    skip = None
    if position:
        loader, sampler = PROGRESS.loader, PROGRESS.sampler
        same_layout = (loader is not None and position['batch_size'] == (loader.batch_size or 1)
                       and position['world_size'] == world_size
                       and (sampler is None or position['sampler_len'] == len(sampler)))
        if same_layout and position['epoch'] == resume_state['epoch']:
            skip = position['batches_done']
        else:
            logger.warning('Batch size, world size or dataset length changed since the training state was saved: '
                           'the resumed epoch restarts from its first batch.')
    PROGRESS.pending = {'epoch': int(resume_state['epoch']), 'skip_batches': skip, 'rng': rng,
                        'epoch_start_iter': int(resume_state['iter']) - (skip or 0)}
    logger.info(f'Exact resume: epoch {resume_state["epoch"]}, skipping {skip} already-trained batch(es); '
                f'RNG states {"restored" if rng is not None else "not restored"}.')


# ----------------------------------------------------------------------------- replacements
# Each takes the BasicSR function it replaces and returns the replacement (installed by compat's table).
def save_training_state(original):
    return write_training_state


def sampler_iter(original_iter):

    def __iter__(self):
        if self is not PROGRESS.sampler:  # validation samplers: untouched
            yield from original_iter(self)
            return
        epoch = getattr(self, 'epoch', 0)
        pending, start = PROGRESS.pending, 0
        if pending is not None and pending['epoch'] == epoch:
            PROGRESS.pending = None
            if pending['rng'] is not None:
                restore_rng_states(pending['rng'])
            if pending['skip_batches']:
                batch_size = (PROGRESS.loader.batch_size or 1) if PROGRESS.loader is not None else 1
                start = pending['skip_batches'] * batch_size
        # positions in the epoch order, for the DataLoader workers' per-sample seeds
        yield from positioned(list(original_iter(self)), epoch, start)

    return __iter__


def sampler_set_epoch(original):

    def set_epoch(self, epoch):
        original(self, epoch)
        if self is PROGRESS.sampler:
            pending = PROGRESS.pending
            PROGRESS.epoch = epoch
            if pending is not None and pending['epoch'] == epoch:
                PROGRESS.epoch_start_iter = pending['epoch_start_iter']
            else:
                PROGRESS.epoch_start_iter = PROGRESS.last_iter

    return set_epoch


def create_loaders(original):

    def create_train_val_dataloader(opt, logger):
        result = original(opt, logger)
        PROGRESS.reset()
        PROGRESS.loader, PROGRESS.sampler = result[0], result[1]
        return result

    return create_train_val_dataloader


def update_learning_rate(original):

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        PROGRESS.last_iter = current_iter
        return original(self, current_iter, warmup_iter)

    return update_learning_rate


def resume_training(original):

    def resume_training(self, resume_state):
        original(self, resume_state)
        arm_resume(resume_state)

    return resume_training


def validation(original):

    def validation(self, *args, **kwargs):
        states = capture_rng_states()
        try:
            return original(self, *args, **kwargs)
        finally:
            restore_rng_states(states)

    return validation
