"""Data loading against the model's consumption: can the workers feed the training step?

The training set is the demo's: ``GaussianNoiseDataset`` on an LMDB (decode the PNG record, random
crop, flips and 90-degree rotations, Gaussian noise at a random sigma), loaded through BasicSR's
``build_dataloader`` exactly as ``basicsr train`` does, with the option's worker count
(``num_worker_per_gpu``). Measured:

- one worker's pace: ``dataset[i]`` in this process, samples per second;
- the DataLoader's rate with the default workers, from its second batch on (worker start-up is a
  one-off cost of a run, not a rate).

With the model's consumption (samples per second of a training iteration, from
:mod:`benchmarks.perf.training_step`) this gives the headroom (target: at least 5x) and the
``num_worker_per_gpu`` that keeps up, or keeps 5x ahead.

Without the demo LMDB (``python scripts/make_demo_data.py`` writes it) a small one is built in a
temporary folder from the same ``skimage.data`` photos.
"""
import math
import os.path as osp
import random
import time

import numpy as np
import torch

from benchmarks.perf import photos as photo_data
from benchmarks.perf import training_step
from benchmarks.perf.results import Target, row, value

SECTION = 'data loading'
LOADER = 'DataLoader (default workers)'
ONE_WORKER = 'one worker (in process)'
GUIDANCE = 'num_worker_per_gpu guidance'
TRAIN_PHOTOS = ('astronaut', 'coffee', 'rocket')  # chelsea is the demo's validation photo
TARGETS = (Target('data loading / model consumption', (SECTION, LOADER, 'samples/s'),
                  (training_step.SECTION, training_step.MODEL_STEP, 'samples/s'), '>=', 5.),)


def ensure_lmdb(path, folder, crop=256):
    """``(LMDB path, note)``: ``path`` when it holds an LMDB, else one built under ``folder`` from
    centre crops of :data:`TRAIN_PHOTOS`."""
    if path and osp.isfile(osp.join(path, 'data.mdb')):
        return path, ''
    from gimsanet_prep.build import build_lmdb
    from gimsanet_prep.jobs import Job
    built = osp.join(folder, 'photos.lmdb')
    images = photo_data.load_photos(TRAIN_PHOTOS, crop)
    jobs = [Job(name, lambda name=name, img=img: [(name, (img[:, :, ::-1] * 255).round().astype(np.uint8))])
            for name, img in images.items()]
    build_lmdb(built, jobs, progress=False, log=lambda *_: None)
    return built, f'{path or "no LMDB given"} not found: a temporary LMDB of {len(jobs)} skimage photos ({crop} px)'


def build_dataset(dataset_opt):
    from basicsr.data import build_dataset as basicsr_build_dataset
    with training_step.quiet_basicsr_logger():
        return basicsr_build_dataset(dict(dataset_opt))


def loader(dataset, dataset_opt, samples, seed=0):
    """BasicSR's training DataLoader over ``samples`` random samples (drawn with replacement, so a
    small data set gives as many batches as asked)."""
    from basicsr.data import build_dataloader
    generator = torch.Generator().manual_seed(seed)
    if int(dataset_opt['num_worker_per_gpu']) == 0:  # torch refuses persistent workers without workers
        dataset_opt = dict(dataset_opt, persistent_workers=False)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=samples, generator=generator)
    with training_step.quiet_basicsr_logger():
        return build_dataloader(dataset, dict(dataset_opt), num_gpu=0, dist=False, sampler=sampler, seed=seed)


def draw_batches(dataset, dataset_opt, count, seed=0):
    """``count`` training batches, the same for every caller with the same seed."""
    batch = int(dataset_opt['batch_size_per_gpu'])
    dataset_opt = dict(dataset_opt, num_worker_per_gpu=0)  # reproducible: the samples come from this process
    random.seed(seed)
    np.random.seed(seed)  # the dataset crops, flips and draws sigmas with the global generators
    return list(loader(dataset, dataset_opt, batch * count, seed))[:count]


def one_worker_rate(dataset, samples):
    """Samples per second of ``dataset[i]`` in this process (the first one untimed)."""
    dataset[0]
    start = time.perf_counter()
    for index in range(samples):
        dataset[index % len(dataset)]
    return samples / (time.perf_counter() - start)


def loader_rate(dataset, dataset_opt, batches):
    """Samples per second through the DataLoader with the option's workers, after its first batch."""
    batch = int(dataset_opt['batch_size_per_gpu'])
    iterator = iter(loader(dataset, dataset_opt, batch * (batches + 1)))
    next(iterator)
    start = time.perf_counter()
    count = sum(item['lq'].shape[0] for item in iterator)
    return count / (time.perf_counter() - start)


def worker_guidance(one_worker, consumption, headroom=5.):
    """``(workers for headroom, text)``: how many workers keep up with the model and keep
    ``headroom`` times ahead, at one worker's measured pace."""
    keep_up = max(1, math.ceil(consumption / one_worker))
    ahead = max(1, math.ceil(headroom * consumption / one_worker))
    text = (f'one worker prepares {one_worker:,.0f} samples/s, the model consumes {consumption:,.1f}: '
            f'num_worker_per_gpu {keep_up} keeps up, {ahead} keeps {headroom:g}x ahead (on a CPU-only '
            'machine every worker takes a core from the training threads: use the smaller)')
    return ahead, text


def rate_rows(dataset, dataset_opt, training_rows, samples=64, batches=8, note=''):
    """The rows of this section: one worker's pace, the DataLoader's rate and the guidance."""
    workers = int(dataset_opt['num_worker_per_gpu'])
    one = one_worker_rate(dataset, samples)
    rows = [row(SECTION, ONE_WORKER, 'samples/s', one, 'samples/s', note),
            row(SECTION, LOADER, 'samples/s', loader_rate(dataset, dataset_opt, batches), 'samples/s',
                f'num_worker_per_gpu {workers}, batch {dataset_opt["batch_size_per_gpu"]}')]
    consumption = value(training_rows, (training_step.SECTION, training_step.MODEL_STEP, 'samples/s'))
    if consumption:
        ahead, text = worker_guidance(one, consumption)
        rows.append(row(SECTION, GUIDANCE, 'workers for 5x', ahead, 'workers', text))
    return rows
