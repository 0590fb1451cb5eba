"""Learning-rate schedules BasicSR 1.4.2 lacks: those Restormer and NAFNet train with.

``build_scheduler`` knows BasicSR's own (``MultiStepLR``/``MultiStepRestartLR``,
``CosineAnnealingRestartLR``) plus:

* ``CosineAnnealingRestartCyclicLR`` (Restormer): consecutive periods, each a cosine from the
  base LR (times its restart weight) down to its own ``eta_min``. Restormer's
  ``periods: [92000, 208000], eta_mins: [0.0003, 0.000001]`` is a flat 3e-4 for 92k iterations,
  then a cosine to 1e-6 over 208k.
* ``TrueCosineAnnealingLR`` (NAFNet): one cosine to ``eta_min`` over ``T_max`` iterations
  (torch's ``CosineAnnealingLR``). ``CosineAnnealingLR`` is accepted as the same thing.
* ``CpuBudgetCosineLR``: one cosine to ``eta_min`` over the run's CPU budget
  (``train.cpu_budget_hours``) instead of over iterations. On a CPU the number of iterations a
  budget buys is not known ahead (it depends on the machine, the threads and what else runs), so
  the schedule follows the CPU time spent, counted across resumes: the LR reaches ``eta_min``
  exactly when the budget ends, whatever machine each chunk ran on. ``hours`` sets a longer
  horizon than the budget: runs compared at 4 CPU-hours on a 12-hour schedule, the best of them
  then continued to 12 by raising ``cpu_budget_hours`` and resuming, with no restart of the LR.
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


class CpuBudgetCosineLR(torch_sched.LRScheduler):
    """Cosine from the base LR to ``eta_min`` over the CPU time spent: ``progress(hours)`` is the
    fraction of ``hours`` (None: the run's budget) spent so far (DenoiseModel passes it)."""

    def __init__(self, optimizer, progress, eta_min=0., hours=None, last_epoch=-1):
        if hours is not None and not float(hours) > 0:
            raise ValueError(f'CpuBudgetCosineLR: hours must be > 0, got {hours}')
        self.progress = progress
        self.eta_min = float(eta_min)
        self.hours = None if hours is None else float(hours)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        done = min(max(float(self.progress(self.hours)), 0.), 1.)
        return [self.eta_min + 0.5 * (base_lr - self.eta_min) * (1 + math.cos(math.pi * done))
                for base_lr in self.base_lrs]

    def state_dict(self):  # the progress callable belongs to the run, not to the saved state
        return {k: v for k, v in super().state_dict().items() if k != 'progress'}

    def load_state_dict(self, state_dict):
        super().load_state_dict({k: v for k, v in state_dict.items() if k != 'progress'})


#: schedules that follow the CPU budget: built with ``progress=`` (see DenoiseModel.setup_schedulers)
BUDGET_SCHEDULERS = ('CpuBudgetCosineLR', )

SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
    'CosineAnnealingRestartCyclicLR': CosineAnnealingRestartCyclicLR,
    'TrueCosineAnnealingLR': torch_sched.CosineAnnealingLR,
    'CosineAnnealingLR': torch_sched.CosineAnnealingLR,
    'CpuBudgetCosineLR': CpuBudgetCosineLR,
}


def build_scheduler(optimizer, scheduler_opt, budget_progress=None):
    """Build a scheduler from ``train.scheduler`` (a dict with ``type``); ``budget_progress``: the
    fraction of the CPU budget spent (a callable), for :data:`BUDGET_SCHEDULERS`."""
    opt = dict(scheduler_opt)
    name = opt.pop('type', None)
    if name not in SCHEDULERS:
        raise ValueError(f'train.scheduler.type: unknown scheduler "{name}". Known: {", ".join(sorted(SCHEDULERS))}')
    if name in BUDGET_SCHEDULERS:
        if budget_progress is None:
            raise ValueError(f'train.scheduler.type: {name} follows the CPU budget; set train.cpu_budget_hours')
        opt['progress'] = budget_progress
    try:
        return SCHEDULERS[name](optimizer, **opt)
    except TypeError as err:
        raise ValueError(f'train.scheduler ({name}): {err}') from None
