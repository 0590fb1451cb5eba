"""Random numbers of DataLoader workers that do not depend on which worker draws them.

BasicSR seeds each worker with ``manual_seed + num_workers * rank + worker_id`` whenever the
workers start, i.e. at every epoch, to the same values. Which worker gets which batch, and how many
samples it drew before, then decides a sample's random crop, flip and noise. A resumed run that
skips the batches already trained hands the remaining ones to workers whose streams are at other
places, so it diverges from the uninterrupted run (and every epoch repeats the last one's streams).

Here every sample of the training set gets its own seed from ``(manual_seed, rank, epoch,
position of the sample in the rank's epoch order)``:

* the train sampler (``sampler_iter`` in :mod:`gimsanet_arch.training.exact_resume`) yields
  :class:`PositionedIndex` values, plain ints that also carry the epoch and the position, through
  :func:`positioned`;
* the workers' init function (:func:`worker_init_fn`, installed over BasicSR's by compat's table)
  makes the worker's dataset reseed Python's ``random``, NumPy's global generator and torch's CPU
  generator from that seed right before it loads the sample.

A sample's augmentation is then the same whatever worker loads it and whatever was skipped before
it, so a resumed run with ``num_worker_per_gpu > 0`` equals an uninterrupted one. With
``num_worker_per_gpu: 0`` samples are loaded in the main process, whose generators exact resume
saves and restores; nothing is reseeded there.
"""
import random

import numpy as np
import torch


class PositionedIndex(int):
    """A dataset index that also says where in the epoch it was drawn (pickles to workers)."""

    def __new__(cls, index, epoch, position):
        value = super().__new__(cls, index)
        value.epoch, value.position = int(epoch), int(position)
        return value

    def __reduce__(self):
        return PositionedIndex, (int(self), self.epoch, self.position)


def positioned(indices, epoch, start=0):
    """``indices`` (an epoch's order) tagged with their positions, from position ``start`` on."""
    return [PositionedIndex(index, epoch, position) for position, index in enumerate(indices) if position >= start]


def sample_seed(manual_seed, rank, epoch, position):
    """The 32-bit seeds of one sample: (python, numpy, torch)."""
    words = np.random.SeedSequence([int(manual_seed), int(rank), int(epoch), int(position)]).generate_state(3)
    return tuple(int(w) for w in words)


def reseed(manual_seed, rank, index):
    """Seed this process's generators for the sample ``index`` (a :class:`PositionedIndex`)."""
    py_seed, np_seed, torch_seed = sample_seed(manual_seed, rank, index.epoch, index.position)
    random.seed(py_seed)
    np.random.seed(np_seed)
    torch.manual_seed(torch_seed)


def _reseeding_getitems(dataset, manual_seed, rank):
    """What the worker's fetcher calls for a batch of indices (it prefers ``__getitems__``)."""
    own = getattr(type(dataset), '__getitems__', None)

    def __getitems__(indices):
        tagged = [i for i in indices if isinstance(i, PositionedIndex)]
        if own is not None:  # a dataset that loads whole batches: one seed per batch
            if tagged:
                reseed(manual_seed, rank, tagged[0])
            return own(dataset, indices)
        samples = []
        for index in indices:
            if isinstance(index, PositionedIndex):
                reseed(manual_seed, rank, index)
            samples.append(dataset[index])
        return samples

    return __getitems__


def worker_init_fn(original):
    """Replacement for ``basicsr.data.worker_init_fn`` (same arguments; BasicSR's
    ``build_dataloader`` binds them): BasicSR's seeding first, then per-sample reseeding of the
    worker's copy of the dataset (see module doc)."""

    def init_worker(worker_id, num_workers, rank, seed):
        original(worker_id, num_workers=num_workers, rank=rank, seed=seed)
        info = torch.utils.data.get_worker_info()
        if info is not None and not isinstance(info.dataset, torch.utils.data.IterableDataset):
            # an instance attribute: the fetcher looks __getitems__ up on the dataset object
            info.dataset.__getitems__ = _reseeding_getitems(info.dataset, seed, rank)

    return init_worker
