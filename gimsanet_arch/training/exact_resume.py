"""Exact resume: RNG states and the position inside the epoch, saved in every training state.

BasicSR 1.4.2 saves only ``epoch``, ``iter``, optimizers and schedulers. On resume its train loop
restarts the resumed epoch's sampler order from the beginning (the batches already trained in that
epoch are seen again) and every random generator starts from ``manual_seed + rank``, so a resumed
run follows a different trajectory from an uninterrupted one.

How the plugin closes that gap:

* A :class:`TrainProgress` follows the training loop: where the epoch started, the last trained
  iteration, the train loader and sampler. BasicSR's ``create_train_val_dataloader`` is wrapped
  (a row of :mod:`gimsanet_arch.compat`) to make one per run and hand it to the model through the
  options (``opt['train_progress']``, the only channel from BasicSR's loop to ``build_model``); the
  train sampler holds the same object.
* DenoiseModel (:mod:`gimsanet_arch.models.training_state`) saves, per rank, the Python / NumPy /
  torch (CPU and CUDA) RNG states and how many batches of the current epoch were consumed
  (``data_position``); in distributed runs the RNG states of all ranks are gathered and rank 0
  writes the file atomically. On resume it arms the progress object: when BasicSR's loop asks the
  sampler for the resumed epoch's indices, the sampler (two more compat rows) restores the RNG
  states and drops the indices of the batches already trained, so the next batch, its random
  crop/flip/noise and everything after are the ones the uninterrupted run saw. Validation runs
  with the RNG states saved and restored around it.

Exact with the default CPU prefetcher, with or without DataLoader workers: the train sampler's
indices carry their position in the epoch, from which the workers seed every sample
(:mod:`gimsanet_arch.training.worker_seeds`). With ``prefetch_mode: cuda`` the next batch is loaded
before the save. A state from an older run without these fields resumes the BasicSR way (epoch
restarted), with a warning. Other BasicSR models in the process keep BasicSR's own resume.
"""
import random
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist

from gimsanet_arch.training.worker_seeds import positioned

FORMAT_VERSION = 1


OPTION_KEY = 'train_progress'  # where the loaders row hands the progress object to build_model


class TrainProgress:
    """Where one run's training loop is (see the module docstring)."""

    def __init__(self, loader=None, sampler=None):
        self.loader, self.sampler = loader, sampler
        self.last_iter = 0  # last iteration whose learning rate was set (i.e. trained)
        self.epoch = None
        self.epoch_start_iter = 0
        self.pending = None  # armed resume: dict(epoch, skip_batches, rng, epoch_start_iter)

    def __deepcopy__(self, memo):
        # BasicSR's build_model deep-copies the options: every copy must share this live handle
        return self

    def data_position(self, current_iter):
        """How far into the current epoch the loop is, or None when no train loader is known."""
        if self.loader is None or self.epoch is None:
            return None
        return {
            'epoch': self.epoch,
            'batches_done': int(current_iter - self.epoch_start_iter),
            'batch_size': int(self.loader.batch_size or 1),
            'sampler_len': int(len(self.sampler)) if self.sampler is not None else None,
            'world_size': _dist_info()[1],
        }

    def start_epoch(self, epoch):
        """The sampler's ``set_epoch``: a new epoch starts after the last trained iteration (or
        where the armed resume says it started)."""
        pending = self.pending
        self.epoch = epoch
        if pending is not None and pending['epoch'] == epoch:
            self.epoch_start_iter = pending['epoch_start_iter']
        else:
            self.epoch_start_iter = self.last_iter

    def epoch_indices(self, indices, epoch):
        """The sampler's indices for ``epoch``, less the batches a resumed run trained already
        (restoring the saved RNG states first), each carrying its position in the epoch."""
        pending, start = self.pending, 0
        if pending is not None and pending['epoch'] == epoch:
            self.pending = None
            if pending['rng'] is not None:
                restore_rng_states(pending['rng'])
            if pending['skip_batches']:
                start = pending['skip_batches'] * ((self.loader.batch_size or 1) if self.loader is not None else 1)
        return positioned(list(indices), epoch, start)


def progress_of(opt):
    """The run's :class:`TrainProgress` from the options (None outside BasicSR's train pipeline)."""
    return (opt or {}).get(OPTION_KEY)


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


# ----------------------------------------------------------------------------- training states
def build_state(model, epoch, current_iter, rng_states, progress):
    """BasicSR's training-state dict plus the exact-resume fields."""
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in model.optimizers],
             'schedulers': [s.state_dict() for s in model.schedulers]}
    extra = getattr(model, 'extra_training_state', None)
    if callable(extra):  # model-specific fields, e.g. DenoiseModel's CPU budget count
        state.update(extra())
    state['gimsanet_resume'] = {
        'version': FORMAT_VERSION,
        'rng_states': rng_states,
        'data_position': progress.data_position(current_iter) if progress is not None else None,
    }
    return state


def write_training_state(model, epoch, current_iter, progress):
    """A training state with the exact-resume fields (called by every rank: the RNG states are
    gathered; rank 0 writes, atomically). BasicSR retried a failed save three times and then went
    on; here a failure (a full disk: DiskFullError) ends the run, the previous files kept."""
    import os
    from basicsr.utils import get_root_logger
    from gimsanet_arch.training.checkpoint import atomic_torch_save
    if current_iter == -1:
        return
    rng_states = gather_rng_states()
    if _dist_info()[0] != 0:
        return
    state = build_state(model, epoch, current_iter, rng_states, progress)
    save_path = os.path.join(model.opt['path']['training_states'], f'{current_iter}.state')
    for attempt in range(3):  # a transient error (network file systems): BasicSR retries too
        try:
            atomic_torch_save(state, save_path)
            return
        except OSError as err:
            if attempt == 2:
                raise
            get_root_logger().warning(f'Save training state error: {err}, remaining retry times: {2 - attempt}')
            time.sleep(1)


def arm_resume(progress, resume_state):
    """Prepare ``progress`` (and through it the train sampler) to continue where ``resume_state``
    stopped (see the module docstring)."""
    from basicsr.utils import get_root_logger
    logger = get_root_logger()
    extra = resume_state.get('gimsanet_resume') if isinstance(resume_state, dict) else None
    progress.last_iter = int(resume_state['iter'])
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
        loader, sampler = progress.loader, progress.sampler
        same_layout = (loader is not None and position['batch_size'] == (loader.batch_size or 1)
                       and position['world_size'] == world_size
                       and (sampler is None or position['sampler_len'] == len(sampler)))
        if same_layout and position['epoch'] == resume_state['epoch']:
            skip = position['batches_done']
        else:
            logger.warning('Batch size, world size or dataset length changed since the training state was saved: '
                           'the resumed epoch restarts from its first batch.')
    progress.pending = {'epoch': int(resume_state['epoch']), 'skip_batches': skip, 'rng': rng,
                        'epoch_start_iter': int(resume_state['iter']) - (skip or 0)}
    logger.info(f'Exact resume: epoch {resume_state["epoch"]}, skipping {skip} already-trained batch(es); '
                f'RNG states {"restored" if rng is not None else "not restored"}.')


# ----------------------------------------------------------------------------- compat rows
# Replacements for BasicSR's train loader and sampler, installed by the table in gimsanet_arch.compat;
# each factory takes the function it replaces.
def create_loaders(original):
    """``basicsr.train.create_train_val_dataloader``: one :class:`TrainProgress` per run, held by the
    train sampler and handed to the model through the options."""

    def create_train_val_dataloader(opt, logger):
        result = original(opt, logger)
        loader, sampler = result[0], result[1]
        progress = TrainProgress(loader, sampler)
        sampler.train_progress = progress
        opt[OPTION_KEY] = progress
        return result

    return create_train_val_dataloader


def sampler_iter(original_iter):
    """``EnlargedSampler.__iter__``: the train sampler's indices go through its run's progress
    (resume skip, positions for the workers' seeds); other samplers are untouched."""

    def __iter__(self):
        progress = getattr(self, 'train_progress', None)
        if progress is None:
            yield from original_iter(self)
            return
        yield from progress.epoch_indices(original_iter(self), getattr(self, 'epoch', 0))

    return __iter__


def sampler_set_epoch(original):
    """``EnlargedSampler.set_epoch``: tells the train sampler's run progress that an epoch starts."""

    def set_epoch(self, epoch):
        original(self, epoch)
        progress = getattr(self, 'train_progress', None)
        if progress is not None:
            progress.start_epoch(epoch)

    return set_epoch
