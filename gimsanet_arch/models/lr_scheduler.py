"""Learning-rate schedules BasicSR 1.4.2 lacks: those Restormer and NAFNet train with.

``build_scheduler`` knows BasicSR's own (``MultiStepLR``/``MultiStepRestartLR``,
``CosineAnnealingRestartLR``) plus:

* ``CosineAnnealingRestartCyclicLR`` (Restormer): consecutive periods, each a cosine from the
  base LR (times its restart weight) down to its own ``eta_min``. Restormer's
  ``periods: [92000, 208000], eta_mins: [0.0003, 0.000001]`` is a flat 3e-4 for 92k iterations,
  then a cosine to 1e-6 over 208k.
* ``TrueCosineAnnealingLR`` (NAFNet): one cosine to ``eta_min`` over ``T_max`` iterations
  (torch's ``CosineAnnealingLR``). ``CosineAnnealingLR`` is accepted as the same thing.
"""
import math

from torch.optim import lr_scheduler as torch_sched

from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR


class CosineAnnealingRestartCyclicLR(torch_sched.LRScheduler):

    def __init__(self, optimizer, periods, restart_weights=(1, ), eta_mins=(0, ), last_epoch=-1):
        if not (len(periods) == len(restart_weights) == len(eta_mins)):
            raise ValueError('CosineAnnealingRestartCyclicLR: periods, restart_weights and eta_mins must have '
                             f'the same length, got {len(periods)}, {len(restart_weights)}, {len(eta_mins)}')
        self.periods = list(periods)
        self.restart_weights = list(restart_weights)
        self.eta_mins = list(eta_mins)
        self.cumulative_period = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def _segment(self, iteration):
        for i, end in enumerate(self.cumulative_period):
            if iteration <= end:
                return i
        return len(self.periods) - 1  # past the last period: stay at its end

    def get_lr(self):
        it = self.last_epoch
        idx = self._segment(it)
        start = self.cumulative_period[idx - 1] if idx > 0 else 0
        progress = min((it - start) / self.periods[idx], 1.0)
        eta_min, weight = self.eta_mins[idx], self.restart_weights[idx]
        return [eta_min + weight * 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * progress))
                for base_lr in self.base_lrs]


SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
    'CosineAnnealingRestartCyclicLR': CosineAnnealingRestartCyclicLR,
    'TrueCosineAnnealingLR': torch_sched.CosineAnnealingLR,
    'CosineAnnealingLR': torch_sched.CosineAnnealingLR,
}


def build_scheduler(optimizer, scheduler_opt):
    """Build a scheduler from ``train.scheduler`` (a dict with ``type``)."""
    opt = dict(scheduler_opt)
    name = opt.pop('type', None)
    if name not in SCHEDULERS:
        raise ValueError(f'train.scheduler.type: unknown scheduler "{name}". Known: {", ".join(sorted(SCHEDULERS))}')
    try:
        return SCHEDULERS[name](optimizer, **opt)
    except TypeError as err:
        raise ValueError(f'train.scheduler ({name}): {err}') from None
