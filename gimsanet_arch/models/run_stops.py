"""How a DenoiseModel run ends before ``total_iter``: its CPU budget is spent, or it was sent SIGTERM.

Either way the run saves a training state at the end of the iteration and leaves BasicSR's loop
through :class:`~gimsanet_arch.training.budget.RunEnded` (``BudgetSpent`` / ``StopRequested``),
which ``basicsr train`` turns into exit status 0, so ``--auto_resume`` continues it; under DDP all
ranks agree on the iteration (one all-reduce of two flags per iteration).
"""
import torch

from basicsr.utils import get_root_logger
from gimsanet_arch.training import budget as cpu_budget
from gimsanet_arch.training.budget import CpuBudget, StopSignal


class RunStops:
    """Mixin of DenoiseModel: the CPU budget (``train.cpu_budget_hours``) and the SIGTERM stop."""

    def setup_stops(self, hours):
        self.cpu_budget = CpuBudget(hours) if hours else None
        self.stop_signal = StopSignal()
        self._trained_here = False  # has this process run an iteration yet

    def _stop_flags(self):
        """``(budget spent, SIGTERM received)``, each true when it is on any rank."""
        spent = self.cpu_budget is not None and self.cpu_budget.exhausted()
        flags = torch.tensor([float(spent), float(self.stop_signal.received)])
        if self.opt.get('dist') and torch.distributed.is_initialized():
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        return bool(flags[0].item()), bool(flags[1].item())

    def stop_if_already_spent(self):
        """A run resumed after its budget was spent trains nothing. Checked before the first
        iteration of a process only: a budget that runs out later (between two iterations, say while
        the loader starts an epoch) is caught by :meth:`stop_if_asked` after the next iteration, which
        saves; stopping here would lose every iteration since the last periodic save."""
        if self._trained_here:
            return
        self._trained_here = True
        if self.cpu_budget is not None and self._stop_flags()[0]:
            get_root_logger().info(f'CPU budget already spent: {self.cpu_budget.summary()}; nothing to train.')
            raise cpu_budget.BudgetSpent('CPU budget already spent')

    def stop_if_asked(self, current_iter):
        """After an iteration: log ``cpu_h`` and ``budget_eta_h`` (wall hours left); save and stop when the budget is spent or SIGTERM came."""
        if self.cpu_budget is not None:
            self.log_dict['cpu_h'] = self.cpu_budget.spent_s() / 3600.
            eta = self.cpu_budget.eta_wall_s()
            if eta is not None:  # the run's real ETA (BasicSR's eta counts to total_iter)
                self.log_dict['budget_eta_h'] = eta / 3600.
        spent, signalled = self._stop_flags()
        if not (spent or signalled):
            return
        logger = get_root_logger()
        if spent:
            logger.info(f'CPU budget reached at iter {current_iter}: {self.cpu_budget.summary()}. Saving and stopping.')
        else:
            logger.info(f'SIGTERM: saving at iter {current_iter} and stopping; continue with --auto_resume.')
        progress = self.train_progress
        self.save((progress.epoch if progress is not None else None) or 0, current_iter)
        if spent:
            raise cpu_budget.BudgetSpent(f'CPU budget reached at iter {current_iter}')
        raise cpu_budget.StopRequested(f'stopped by SIGTERM at iter {current_iter}')

    def extra_training_state(self):
        """Fields a training state stores besides BasicSR's (see exact_resume.build_state)."""
        return {cpu_budget.STATE_KEY: self.cpu_budget.state()} if self.cpu_budget is not None else {}

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        if self.cpu_budget is not None:
            self.cpu_budget.restore(resume_state.get(cpu_budget.STATE_KEY))
            get_root_logger().info(f'CPU budget so far: {self.cpu_budget.summary()}')
