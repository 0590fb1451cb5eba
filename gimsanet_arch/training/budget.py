"""``train.cpu_budget_hours``: end a training run after a fixed amount of CPU time.

Used to train several networks under the same compute budget (docs/race.md): every entrant stops
after the same number of CPU-hours instead of the same number of iterations, so a slower network
gets fewer iterations, as it would on a real machine.

What is counted: the CPU time (user + system, all threads) of the training process, from
``time.process_time``, summed over resumed chunks (the spent time is stored in every training
state). DataLoader worker processes are *not* counted: set ``num_worker_per_gpu: 0`` so that data
loading is paid from the same budget. Run each entrant with one thread (``OMP_NUM_THREADS=1``) to
make CPU time equal core time and to keep other jobs on the machine from changing the count
(they slow the wall clock, not the CPU time).
"""
import time

STATE_KEY = 'gimsanet_cpu_budget'


class RunEnded(Exception):
    """The run stopped on purpose after saving its state: its CPU budget is spent, or it was asked
    to stop (SIGTERM). The declared way out of BasicSR's training loop, which has no stop hook and
    catches nothing there: ``basicsr train`` (:mod:`gimsanet_arch.commands.basicsr_cli`) catches it,
    logs the message and exits with status 0, so ``--auto_resume`` continues the run. An ordinary
    ``Exception``: nothing in BasicSR between the model and the CLI swallows it."""


class BudgetSpent(RunEnded):
    """The run has used its CPU budget (and saved its state)."""


class CpuBudget:
    """CPU seconds spent by this training run across resumes, against a limit."""

    def __init__(self, hours):
        hours = float(hours)
        if not hours > 0:
            raise ValueError(f'train.cpu_budget_hours must be > 0, got {hours}')
        self.limit_s = hours * 3600.
        self.spent_before_s = 0.
        self.wall_before_s = 0.
        self._cpu_start = time.process_time()
        self._wall_start = time.monotonic()

    def spent_s(self):
        return self.spent_before_s + time.process_time() - self._cpu_start

    def wall_s(self):
        return self.wall_before_s + time.monotonic() - self._wall_start

    def eta_wall_s(self):
        """Wall-clock seconds until the budget is spent, at this chunk's rate of CPU per wall second
        (it counts what else shares the cores); None before the chunk has run a second. BasicSR's own
        ``eta`` counts down to ``total_iter``, which a budget run never reaches."""
        cpu = time.process_time() - self._cpu_start
        wall = time.monotonic() - self._wall_start
        if wall < 1. or cpu <= 0.:
            return None
        return max(self.limit_s - self.spent_s(), 0.) * wall / cpu

    def exhausted(self):
        return self.spent_s() >= self.limit_s

    def state(self):
        """What a training state stores to continue the count after a resume."""
        return {'limit_s': self.limit_s, 'spent_s': self.spent_s(), 'wall_s': self.wall_s()}

    def restore(self, saved):
        """Continue the count from a training state's :meth:`state` (None: a state without one)."""
        if saved:  # this chunk's own start-up (since __init__) stays counted
            self.spent_before_s = float(saved['spent_s'])
            self.wall_before_s = float(saved.get('wall_s', 0.))

    def summary(self):
        return (f'{self.spent_s() / 3600:.3f} of {self.limit_s / 3600:.3f} CPU-hours '
                f'({self.wall_s() / 3600:.3f} h wall clock)')


class StopRequested(RunEnded):
    """The run was asked to stop (SIGTERM) and has saved its state."""


class StopSignal:
    """SIGTERM (``kill PID``, a batch system's time limit, the end of a session) asks the run to save
    at the end of the current iteration and stop, so ``--auto_resume`` loses nothing. A second
    SIGTERM ends the process at once, as the default handler would."""

    def __init__(self):
        self.received = False
        self._previous = None
        try:
            import signal
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread (e.g. a model built inside a test helper): nothing to install
            pass

    def _handle(self, signum, frame):
        import signal
        if self.received:  # asked twice: stop now
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
        self.received = True  # only a flag here: the training loop saves at the end of the iteration
