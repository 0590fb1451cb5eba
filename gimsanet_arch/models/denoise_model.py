"""DenoiseModel: BasicSR's SRModel with what denoiser training needs.

Added on top of SRModel (every option is off or neutral by default):

* any number of losses: every ``train.<name>_opt`` is built and summed, and logged as
  ``l_<short name>`` (``pixel_opt`` -> ``l_pix``, ``grad_opt`` -> ``l_grad``, ``psnr_opt`` -> ``l_psnr``);
* optimizers by torch name (``Adam``, ``AdamW``, ...), the Restormer/NAFNet cosine schedules;
* ``train.grad_clip_norm`` (or ``use_grad_clip: true`` = 0.01, the Restormer/NAFNet value);
* ``train.accum_steps``: the loaded batch is split into that many chunks, each forwarded and
  back-propagated on its own before one optimizer step. A published global batch is reached on
  fewer GPUs with the memory of a smaller batch and the same gradient (losses are weighted by chunk
  size) and the same iteration count and LR schedule;
* ``train.bf16``: bf16 autocast for the training forward (weights and optimizer stay fp32);
  ``auto`` enables it where the CPU/GPU has native bf16;
* ``train.channels_last``: train in the channels_last layout (network, EMA copy and input). ``auto``
  does so on a CPU without bf16, where it is measured 14 % faster per fp32 step; it is refused with
  bf16 on a CPU, where PyTorch computes wrong weight gradients for dilated convs in that layout
  (docs/cpu_recipe.md). Single process only. Checkpoints are layout-free: a run resumes in either;
* ``train.cpu_budget_hours``: stop (after saving a checkpoint) once the run has used that much CPU
  time, counted across resumes (:mod:`gimsanet_arch.training.budget`); ``cpu_h`` is logged;
  ``scheduler: {type: CpuBudgetCosineLR, eta_min: ..., hours: ...}`` anneals the LR over that
  budget (or over ``hours`` CPU-hours);
* non-finite losses: the step is skipped with a warning; ``train.max_nonfinite_steps`` in a row
  (default 5) stop the run with a clear error;
* progressive patches (Restormer): ``datasets.train.mini_batch_sizes`` / ``iters`` / ``gt_sizes``;
* Restormer's mixup augmentation: ``train.mixing_augs.mixup`` (``mixup_beta``, ``use_identity``);
* validation: pads (reflect, right/bottom) to ``val.pad_multiple`` (alias ``val.window_size``) and
  crops back; optional overlapping tiles (``val.tile``, ``val.tile_overlap``) for large images;
  ``val.report_input: true`` also logs the metrics of the noisy input; each validation set is
  logged under its own ``name``; ``val.suffix`` is optional; validation runs on the unwrapped
  network (no DDP collective on rank 0 alone), through the inference engine's fast path:
  channels_last input and ``val.dtype`` (``auto``: bf16 autocast where the device has native bf16,
  ``fp32``, ``bf16``). The weights keep the layout training gave them.

Saving and resuming (atomic checkpoints in ``logger.save_checkpoint_format``, safe loading, exact
resume, RNG-safe validation, DDP on CPU) come from :class:`~gimsanet_arch.models.training_state.TrainingState`;
the CPU budget and the SIGTERM stop from :class:`~gimsanet_arch.models.run_stops.RunStops`; ``test`` and
the validation loop from :class:`~gimsanet_arch.models.validation.DenoiseValidation`. All are methods of
this class (mixins), not changes to BasicSR's ``BaseModel``.
"""
import contextlib
import random
from collections import OrderedDict

import numpy as np
import torch

from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from gimsanet_arch.inference import engine
from gimsanet_arch.models.lr_scheduler import build_scheduler
from gimsanet_arch.models.run_stops import RunStops
from gimsanet_arch.models.training_state import TrainingState
from gimsanet_arch.models.validation import DenoiseValidation

LOSS_LOG_NAMES = {'pixel_opt': 'l_pix', 'grad_opt': 'l_grad', 'gradient_opt': 'l_grad', 'perceptual_opt': 'l_percep',
                  'psnr_opt': 'l_psnr'}


@MODEL_REGISTRY.register()
class DenoiseModel(RunStops, TrainingState, DenoiseValidation, SRModel):
    """Denoising model for BasicSR (see module docstring for the options)."""

    # the options it reads beyond BasicSR's, per section (checked up front by basicsr train)
    TRAIN_OPTIONS = {
        'accum_steps': 'split each loaded batch into this many chunks, one optimizer step (default 1)',
        'bf16': 'bf16 autocast in the training forward: true, false or auto',
        'channels_last': 'channels_last layout in training: true, false or auto (on for fp32 CPU training)',
        'cpu_budget_hours': 'stop, after saving, once the run has used this much CPU time (across resumes)',
        'grad_clip_norm': 'clip the gradient norm to this value',
        'use_grad_clip': 'Restormer/NAFNet: clip the gradient norm to 0.01',
        'max_nonfinite_steps': 'stop after this many non-finite losses in a row (default 5)',
        'mixing_augs': "Restormer's mixup: {mixup, mixup_beta, use_identity}",
    }
    VAL_OPTIONS = {
        'dtype': 'validation precision: auto, fp32 or bf16',
        'pad_multiple': 'reflect-pad inputs to a multiple of this (default: from the network)',
        'window_size': "Restormer's name for pad_multiple",
        'report_input': 'also log the metrics of the noisy input',
        'tile': 'validate in overlapping tiles of this size (large images)',
        'tile_overlap': 'overlap of the tiles in pixels (default 32)',
    }
    TRAIN_DATASET_OPTIONS = {
        'mini_batch_sizes': "progressive training (Restormer): the batch size of each stage",
        'iters': 'progressive training: the iterations of each stage',
        'gt_sizes': 'progressive training: the patch size of each stage',
    }

    def __init__(self, opt):
        self.current_iter = 0
        self.run_lock = None
        if opt.get('is_train') and opt.get('rank', 0) == 0 and (opt.get('path') or {}).get('experiments_root'):
            # BasicSR has made (or reused) the run's folder by now; held until the process ends
            from gimsanet_arch.training.run_lock import RunLock
            self.run_lock = RunLock(opt['path']['experiments_root'])
            if self.run_lock.stale:
                get_root_logger().warning(f'took over the run lock left by {self.run_lock.stale} (no longer running)')
        super().__init__(opt)

    # ------------------------------------------------------------------ training set-up
    def init_training_settings(self):
        self.net_g.train()
        train_opt = self.opt['train']
        logger = get_root_logger()

        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            from basicsr.archs import build_network
            logger.info(f'Use Exponential Moving Average with decay: {self.ema_decay}')
            self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:
                self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True), 'params_ema')
            else:
                self.model_ema(0)
            self.net_g_ema.eval()

        self.losses = OrderedDict()
        for key, loss_opt in train_opt.items():
            if key.endswith('_opt') and isinstance(loss_opt, dict) and loss_opt.get('type'):
                name = LOSS_LOG_NAMES.get(key, 'l_' + key[:-len('_opt')])
                self.losses[name] = build_loss(dict(loss_opt)).to(self.device)
        if not self.losses:
            raise ValueError('train: no loss configured (add pixel_opt, grad_opt, psnr_opt, ...)')
        # SRModel attributes other code may look at
        self.cri_pix = self.losses.get('l_pix')
        self.cri_perceptual = self.losses.get('l_percep')

        self.grad_clip_norm = train_opt.get('grad_clip_norm')
        if self.grad_clip_norm is None and train_opt.get('use_grad_clip', False):
            self.grad_clip_norm = 0.01  # Restormer / NAFNet
        self.accum_steps = int(train_opt.get('accum_steps', 1))
        if self.accum_steps < 1:
            raise ValueError(f'train.accum_steps must be >= 1, got {self.accum_steps}')
        bf16 = train_opt.get('bf16', False)
        self.use_bf16 = engine.bf16_supported(self.device) if bf16 == 'auto' else bool(bf16)
        logger.info(f'bf16 autocast in training forward: {self.use_bf16}')
        self.channels_last = self._resolve_channels_last(train_opt.get('channels_last', False))
        if self.channels_last:
            # before the optimizer is built; parameters keep their identity, only their strides change
            self.get_bare_model(self.net_g).to(memory_format=torch.channels_last)
            if self.ema_decay > 0:
                self.net_g_ema.to(memory_format=torch.channels_last)
        logger.info(f'channels_last layout in training: {self.channels_last}')
        self.max_nonfinite = int(train_opt.get('max_nonfinite_steps', 5))
        self.nonfinite_in_a_row = 0
        self.setup_stops(train_opt.get('cpu_budget_hours'))

        mixing = train_opt.get('mixing_augs') or {}
        self.mixup = bool(mixing.get('mixup', False))
        self.mixup_beta = float(mixing.get('mixup_beta', 1.2))
        self.mixup_identity = bool(mixing.get('use_identity', False))

        train_data = self.opt['datasets'].get('train', {})
        self.progressive = None
        if train_data.get('mini_batch_sizes') and train_data.get('iters'):
            self.progressive = {
                'batch': list(train_data['mini_batch_sizes']),
                'ends': np.cumsum(train_data['iters']).tolist(),
                'sizes': list(train_data.get('gt_sizes') or [train_data['gt_size']] * len(train_data['iters'])),
                'gt_size': train_data.get('gt_size'),
                'logged': set(),
            }

        self.setup_optimizers()
        self.setup_schedulers()

    def _resolve_channels_last(self, value):
        cpu, dist = self.device.type == 'cpu', bool(self.opt.get('dist'))
        if value == 'auto':
            return cpu and not self.use_bf16 and not dist
        if value not in (True, False):
            raise ValueError(f'train.channels_last: expected true, false or auto, got {value!r}')
        if value and cpu and self.use_bf16:
            raise ValueError('train.channels_last: true with train.bf16 on a CPU gives wrong weight gradients for '
                             'dilated convs (PyTorch bug, docs/cpu_recipe.md); set one of them to false')
        if value and dist:
            raise ValueError('train.channels_last: true is for single-process training; set it to false or auto '
                             'under torchrun')
        return value

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        optim_class = getattr(torch.optim, optim_type, None)
        if not (isinstance(optim_class, type) and issubclass(optim_class, torch.optim.Optimizer)):
            raise ValueError(f'train.optim_g.type: unknown optimizer "{optim_type}" (use a torch.optim name, '
                             'e.g. Adam, AdamW, SGD)')
        return optim_class(params, lr, **kwargs)

    def setup_schedulers(self):
        scheduler_opt = dict(self.opt['train']['scheduler'])
        self.opt['train']['scheduler'].pop('type', None)  # BasicSR convention: type is popped
        progress = None
        if self.cpu_budget is not None:
            def progress(hours=None):  # fraction of `hours` (default: the whole budget) spent so far
                return self.cpu_budget.spent_s() / (hours * 3600. if hours else self.cpu_budget.limit_s)
        for optimizer in self.optimizers:
            self.schedulers.append(build_scheduler(optimizer, scheduler_opt, budget_progress=progress))

    # ------------------------------------------------------------------ training step
    def feed_data(self, data):
        lq, gt = data['lq'], data.get('gt')
        if self.is_train and gt is not None and self.net_g.training:
            if self.progressive is not None:
                lq, gt = self._progressive_crop(lq, gt)
            if self.mixup:
                lq, gt = self._mixup(lq, gt)
        self.lq = lq.to(self.device)
        if gt is not None:
            self.gt = gt.to(self.device)

    def _progressive_crop(self, lq, gt):
        prog = self.progressive
        stage = int(np.searchsorted(prog['ends'], self.current_iter, side='left'))
        stage = min(stage, len(prog['ends']) - 1)
        batch, size = prog['batch'][stage], prog['sizes'][stage]
        if stage not in prog['logged']:
            prog['logged'].add(stage)
            get_root_logger().info(f'Progressive training: iter {self.current_iter}: patch {size}, mini-batch {batch}')
        if batch < lq.shape[0]:
            keep = random.sample(range(lq.shape[0]), k=batch)
            lq, gt = lq[keep], gt[keep]
        h, w = lq.shape[-2:]
        if size < min(h, w):
            top, left = int((h - size) * random.random()), int((w - size) * random.random())
            lq = lq[..., top:top + size, left:left + size]
            gt = gt[..., top:top + size, left:left + size]
        return lq, gt

    def _mixup(self, lq, gt):
        if self.mixup_identity and random.randint(0, 1) == 1:
            return lq, gt
        lam = torch.distributions.Beta(self.mixup_beta, self.mixup_beta).sample().item()
        perm = torch.randperm(lq.shape[0])
        return lam * lq + (1 - lam) * lq[perm], lam * gt + (1 - lam) * gt[perm]

    def _compute_losses(self, output, gt):
        total, parts = 0, OrderedDict()
        for name, loss_fn in self.losses.items():
            value = loss_fn(output, gt)
            if isinstance(value, tuple):  # perceptual loss: (perceptual, style)
                for sub_name, sub in zip((name, 'l_style'), value):
                    if sub is not None:
                        total, parts[sub_name] = total + sub, sub
            else:
                total, parts[name] = total + value, value
        return total, parts

    def _all_ranks_finite(self, loss):
        """True when the loss is finite on every rank: under DDP all ranks must skip a step
        together, or they fall out of step in the gradient all-reduce and hang."""
        finite = torch.isfinite(loss.detach()).float().reshape(1)
        if self.opt.get('dist') and torch.distributed.is_initialized():
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def optimize_parameters(self, current_iter):
        self.stop_if_already_spent()
        self._step(current_iter)
        self.stop_if_asked(current_iter)

    def _step(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        batch = self.lq.shape[0]
        lq_chunks = self.lq.chunk(min(self.accum_steps, batch))
        gt_chunks = self.gt.chunk(len(lq_chunks))
        loss_sums, outputs = OrderedDict(), []
        for index, (lq, gt) in enumerate(zip(lq_chunks, gt_chunks)):
            if self.channels_last:
                lq = lq.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                out = self.net_g(lq)
            out = out.float()
            l_total, parts = self._compute_losses(out, gt)
            if not self._all_ranks_finite(l_total):
                self._skip_nonfinite_step(current_iter, parts)
                return
            share = lq.shape[0] / batch
            last = index == len(lq_chunks) - 1
            # DDP: all-reduce gradients once, after the last chunk
            sync = contextlib.nullcontext() if last or not hasattr(self.net_g, 'no_sync') else self.net_g.no_sync()
            with sync:
                (l_total * share).backward()
            outputs.append(out.detach())
            for name, value in parts.items():
                loss_sums[name] = loss_sums.get(name, 0) + value.detach() * share
        self.nonfinite_in_a_row = 0
        self.output = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        if self.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm)
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_sums)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _skip_nonfinite_step(self, current_iter, parts):
        self.optimizer_g.zero_grad(set_to_none=True)
        self.nonfinite_in_a_row += 1
        # BasicSR logs get_current_log() every print_freq iterations: a skipped first step had none
        self.log_dict = OrderedDict((k, float(v.detach())) for k, v in parts.items())
        values = ', '.join(f'{k}={float(v.detach()):.4g}' for k, v in parts.items())
        logger = get_root_logger()
        logger.warning(f'iter {current_iter}: non-finite loss (here or on another rank; here: {values}); step skipped '
                       f'({self.nonfinite_in_a_row}/{self.max_nonfinite} in a row)')
        if self.nonfinite_in_a_row >= self.max_nonfinite:
            raise FloatingPointError(
                f'{self.nonfinite_in_a_row} non-finite losses in a row (last at iter {current_iter}: {values}); '
                'stopping. Lower the learning rate, enable train.grad_clip_norm, or check the data.')
