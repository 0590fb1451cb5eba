"""Training speed: what DenoiseModel adds to a bare PyTorch loop, and what bf16 autocast gains.

Both come from the demo's options (:data:`DEMO_OPTIONS`, kept equal to
``options/train/GIMSANet/train_GIMSANet_demo_skimage.yml`` by the tests): the same network,
batch, patch size, Adam settings, L1 loss and ``train.bf16``.

- Overhead: one DenoiseModel iteration (``update_learning_rate``, ``feed_data``,
  ``optimize_parameters``, as BasicSR's training loop calls them) against a bare loop over the same
  network with the same weights, batch, optimizer and autocast (``zero_grad``, forward, L1,
  ``backward``, ``step``); the two are timed in turn, round after round, so a disturbance of the
  machine hits both, and the medians are compared.
- bf16 vs fp32: two DenoiseModels from the same seed, one with ``train.bf16`` on and one off, on
  the same batches of the demo data: ms per iteration (median) and the loss of every iteration
  (the curves of the report's PNG).
"""
import contextlib
import copy
import itertools
import logging
import statistics
import time

import torch

from gimsanet_arch.inference import measure
from benchmarks.perf.results import Target, row

SECTION = 'training'
MODEL_STEP = 'DenoiseModel iteration'
BARE_STEP = 'bare PyTorch loop'
OVERHEAD = 'DenoiseModel overhead'
# options/train/GIMSANet/train_GIMSANet_demo_skimage.yml (datasets.train, network_g, train)
DEMO_OPTIONS = {
    'datasets': {'train': {
        'name': 'skimage_photos', 'type': 'GaussianNoiseDataset', 'dataroot_gt': 'datasets/demo/train.lmdb',
        'io_backend': {'type': 'lmdb'}, 'in_ch': 3, 'sigma_type': 'random', 'sigma_range': [5, 50], 'gt_size': 48,
        'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': 8,
        'dataset_enlarge_ratio': 200, 'persistent_workers': True}},
    'network_g': {'type': 'GIMSANet', 'in_channels': 3, 'grad_mode': 'official'},
    'train': {
        'bf16': 'auto', 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.999]},
        'scheduler': {'type': 'TrueCosineAnnealingLR', 'T_max': 300, 'eta_min': 1e-5}, 'total_iter': 300,
        'warmup_iter': 20, 'use_grad_clip': False, 'grad_clip_norm': 1.0,
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
}
TARGETS = (Target('DenoiseModel iteration overhead vs bare loop', (SECTION, OVERHEAD, '%'), None, '<=', 10., '%'),)


def demo_options(device='cpu', network_opt=None, batch=None, patch=None, lmdb=None, workers=None, bf16=None):
    """A full option dict for ``basicsr.models.build_model``: the demo's, with the given changes."""
    demo = copy.deepcopy(DEMO_OPTIONS)
    train_set = demo['datasets']['train']
    train_set['phase'] = 'train'
    for key, given in (('batch_size_per_gpu', batch), ('gt_size', patch), ('dataroot_gt', lmdb),
                       ('num_worker_per_gpu', workers)):
        if given is not None:
            train_set[key] = given
    if bf16 is not None:
        demo['train']['bf16'] = bf16
    return {'name': 'perf_training', 'model_type': 'DenoiseModel', 'scale': 1, 'is_train': True, 'dist': False,
            'rank': 0, 'world_size': 1, 'num_gpu': 1 if torch.device(device).type == 'cuda' else 0, 'manual_seed': 0,
            'network_g': dict(network_opt or demo['network_g']), 'datasets': demo['datasets'], 'train': demo['train'],
            'val': {'metrics': {}},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                     'models': '/nonexistent', 'training_states': '/nonexistent'}}


@contextlib.contextmanager
def quiet_basicsr_logger():
    """BasicSR logs every model and dataset it builds at INFO: keep the report readable."""
    logger = logging.getLogger('basicsr')
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def build_model(opt, seed=0):
    """A DenoiseModel from ``opt`` (a deep copy: BasicSR pops keys), initialised from ``seed``."""
    from basicsr.models import build_model as basicsr_build_model
    torch.manual_seed(seed)
    with quiet_basicsr_logger():
        return basicsr_build_model(copy.deepcopy(opt))


def model_iteration(model, batch, current_iter, warmup_iter=-1):
    """One iteration of BasicSR's training loop on ``batch``."""
    model.update_learning_rate(current_iter, warmup_iter)
    model.feed_data(batch)
    model.optimize_parameters(current_iter)


def model_step(model, batch, warmup_iter=-1):
    """One call = the next iteration on ``batch``."""
    counter = itertools.count(1)
    return lambda: model_iteration(model, batch, next(counter), warmup_iter)


def bare_step(opt, state_dict, batch, bf16, device):
    """One call = one iteration of a bare loop with the network, optimizer and loss of ``opt``."""
    from basicsr.archs import build_network
    net = build_network(copy.deepcopy(opt['network_g'])).to(device)
    net.load_state_dict(state_dict)
    net.train()
    optim_opt = dict(opt['train']['optim_g'])
    optimizer = getattr(torch.optim, optim_opt.pop('type'))(net.parameters(), **optim_opt)
    loss_fn = torch.nn.L1Loss()
    lq, gt = batch['lq'].to(device), batch['gt'].to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            out = net(lq)
        loss_fn(out.float(), gt).backward()
        optimizer.step()
    return step


def interleaved_medians(calls, device, runs=5, warmup=1):
    """Median seconds of each of ``calls``, timed in turn round after round (after ``warmup`` rounds)."""
    times = [[] for _ in calls]
    for round_index in range(warmup + runs):
        for call, spent in zip(calls, times):
            start = time.perf_counter()
            call()
            measure.synchronize(device)
            if round_index >= warmup:
                spent.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def overhead_rows(opt, batch, device='cpu', runs=5, warmup=1):
    """ms and samples/s of a DenoiseModel iteration and of the bare loop, and the overhead in %."""
    model = build_model(opt)
    bare = bare_step(opt, model.net_g.state_dict(), batch, model.use_bf16, device)
    model_s, bare_s = interleaved_medians([model_step(model, batch, opt['train'].get('warmup_iter', -1)), bare],
                                          device, runs, warmup)
    n, size = batch['lq'].shape[0], batch['lq'].shape[-1]
    note = f'batch {n} x {size} px, bf16 autocast {"on" if model.use_bf16 else "off"}'
    rows = []
    for name, seconds in ((MODEL_STEP, model_s), (BARE_STEP, bare_s)):
        rows += [row(SECTION, name, 'ms', seconds * 1000., 'ms', note),
                 row(SECTION, name, 'samples/s', n / seconds, 'samples/s', note)]
    rows.append(row(SECTION, OVERHEAD, '%', 100. * (model_s - bare_s) / bare_s, '%', note))
    return rows


def precision_runs(opt, batches, device='cpu', skip=2):
    """Train from the same seed on ``batches`` with bf16 autocast off and on. Returns the rows (ms per
    iteration, the median after the first ``skip``; the mean loss of the last quarter; the
    speed-up) and ``{'fp32': [loss, ...], 'bf16': [...]}``."""
    curves, seconds = {}, {}
    for label, bf16 in (('fp32', False), ('bf16', True)):
        model = build_model(dict(opt, train=dict(opt['train'], bf16=bf16)))
        losses, times = [], []
        for current_iter, batch in enumerate(batches, 1):
            start = time.perf_counter()
            model_iteration(model, batch, current_iter, opt['train'].get('warmup_iter', -1))
            measure.synchronize(device)
            times.append(time.perf_counter() - start)
            losses.append(float(model.get_current_log()['l_pix']))
        curves[label] = losses
        seconds[label] = statistics.median(times[skip:] if len(times) > skip else times)
    n, size = batches[0]['lq'].shape[0], batches[0]['lq'].shape[-1]
    note = f'{len(batches)} iterations, batch {n} x {size} px'
    rows = []
    for label, losses in curves.items():
        tail = losses[-max(1, len(losses) // 4):]
        rows += [row(SECTION, f'DenoiseModel {label}', 'ms', seconds[label] * 1000., 'ms', note),
                 row(SECTION, f'DenoiseModel {label}', 'final loss', sum(tail) / len(tail), 'L1', note)]
    rows.append(row(SECTION, 'bf16 speed-up', 'x', seconds['fp32'] / seconds['bf16'], 'x', note))
    return rows, curves
