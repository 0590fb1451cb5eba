"""train.cpu_budget_hours: a run stops (after saving) once it has used its CPU time, counted across resumes."""
import json
import re
import time

import pytest
import torch
import yaml

from conftest import run_basicsr
from gimsanet_arch.training.budget import CpuBudget

TINY_OPT = 'tests/options/train_GIMSANet_tiny.yml'


def test_budget_counts_process_cpu_time_and_continues_from_a_saved_state():
    budget = CpuBudget(hours=1)
    start = budget.spent_s()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn a little CPU
        pass
    assert budget.spent_s() - start >= 0.05
    assert not budget.exhausted()

    resumed = CpuBudget(hours=1)
    resumed.restore({'limit_s': 3600., 'spent_s': 3599.99, 'wall_s': 10.})
    assert resumed.spent_s() >= 3599.99 and resumed.wall_s() >= 10.
    deadline = time.process_time() + 0.02
    while time.process_time() < deadline:
        pass
    assert resumed.exhausted()
    resumed.restore(None)  # a state saved without a budget: the count goes on from this chunk
    assert resumed.spent_s() >= 3599.99


def test_budget_eta_is_the_cpu_left_at_this_chunks_cpu_per_wall_rate(monkeypatch):
    clock = {'cpu': 100., 'wall': 1000.}
    monkeypatch.setattr(time, 'process_time', lambda: clock['cpu'])
    monkeypatch.setattr(time, 'monotonic', lambda: clock['wall'])
    budget = CpuBudget(hours=1)
    budget.restore({'limit_s': 3600., 'spent_s': 1800., 'wall_s': 5000.})
    assert budget.eta_wall_s() is None  # nothing measured yet
    clock['cpu'] += 600.  # half a core: 600 CPU-s in 1200 wall-s
    clock['wall'] += 1200.
    assert budget.eta_wall_s() == pytest.approx((3600. - 2400.) * 2)
    clock['cpu'] += 1200.  # spent: nothing left
    clock['wall'] += 1200.
    assert budget.eta_wall_s() == 0.


def test_budget_spent_between_iterations_is_saved_by_the_next_iteration(monkeypatch):
    """The budget can run out between two iterations (the loader starting an epoch, a log line):
    the run must then end through the save after the next iteration, not through the resumed-run
    check before it, which saves nothing (and lost every iteration since the last periodic save)."""
    from gimsanet_arch.models.run_stops import RunStops
    from gimsanet_arch.training.budget import BudgetSpent

    class Model(RunStops):
        opt, train_progress = {}, None

        def __init__(self):
            self.log_dict, self.saved = {}, []
            self.setup_stops(1)

        def save(self, epoch, current_iter):
            self.saved.append(current_iter)

    model = Model()
    spent = {'now': False}
    monkeypatch.setattr(model.cpu_budget, 'exhausted', lambda: spent['now'])
    model.stop_if_already_spent()  # before the first iteration: budget left
    model.stop_if_asked(1)
    spent['now'] = True  # runs out between iteration 1 and 2
    model.stop_if_already_spent()  # must not end the run unsaved
    with pytest.raises(BudgetSpent):
        model.stop_if_asked(2)
    assert model.saved == [2]

    resumed = Model()  # a run resumed with its budget spent trains nothing and saves nothing
    monkeypatch.setattr(resumed.cpu_budget, 'exhausted', lambda: True)
    with pytest.raises(BudgetSpent, match='already spent'):
        resumed.stop_if_already_spent()
    assert resumed.saved == []


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match='cpu_budget_hours'):
        CpuBudget(0)


def _state_spent(exp, iteration):
    state = torch.load(exp / 'training_states' / f'{iteration}.state', map_location='cpu', weights_only=False)
    return state['gimsanet_cpu_budget']['spent_s']


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    from tiny_data import write_folder
    from conftest import REPO_ROOT
    base = tmp_path_factory.mktemp('budget')
    write_folder(base / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(base / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    return base, f'{REPO_ROOT}/{TINY_OPT}'


def _train(work, name, *force):
    base, opt = work
    return run_basicsr(['train', '-opt', opt, '--auto_resume', '--force_yml', f'name={name}', 'val:val_freq=1000',
                        *force], base)


def test_run_stops_at_its_budget_saves_and_stays_stopped(work):
    # 7 CPU-seconds: some iterations of the tiny net, far fewer than total_iter
    result = _train(work, 'budget_stop', 'train:cpu_budget_hours=0.002', 'train:total_iter=100000',
                    'logger:save_checkpoint_freq=100000')
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    stop = re.search(r'CPU budget reached at iter (\d+)', log)
    assert stop, log[-3000:]
    iteration = int(stop.group(1))
    exp = work[0] / 'experiments' / 'budget_stop'
    assert (exp / 'models' / f'net_g_{iteration}.pth').exists()
    assert iteration > 1 and _state_spent(exp, iteration) >= 7.2
    assert 'cpu_h:' in log and 'budget_eta_h:' in log

    again = _train(work, 'budget_stop', 'train:cpu_budget_hours=0.002', 'train:total_iter=100000',
                   'logger:save_checkpoint_freq=100000')
    assert again.returncode == 0, again.stderr[-3000:]
    assert 'CPU budget already spent' in again.stdout + again.stderr
    saved = sorted(p.name for p in (exp / 'models').iterdir())
    assert saved == [f'net_g_{iteration}.pth']  # nothing trained or saved after the budget


def test_resumed_run_continues_the_cpu_count(work):
    first = _train(work, 'budget_resume', 'train:cpu_budget_hours=1', 'train:total_iter=3')
    assert first.returncode == 0, first.stderr[-3000:]
    exp = work[0] / 'experiments' / 'budget_resume'
    spent_3 = _state_spent(exp, 3)
    second = _train(work, 'budget_resume', 'train:cpu_budget_hours=1', 'train:total_iter=6')
    assert second.returncode == 0, second.stderr[-3000:]
    so_far = re.search(r'CPU budget so far: ([\d.]+) of', second.stdout + second.stderr)
    assert so_far, (second.stdout + second.stderr)[-3000:]
    # restored from the state, plus this chunk's own start-up (well under a few seconds)
    assert spent_3 / 3600 - 0.0005 <= float(so_far.group(1)) <= spent_3 / 3600 + 0.002
    assert _state_spent(exp, 6) > spent_3


def test_cpu_budget_cosine_follows_the_spent_fraction_and_saves_without_the_callable():
    from gimsanet_arch.models.lr_scheduler import build_scheduler
    spent = {'fraction_of_12h': 0.}

    def progress(hours=None):
        return spent['fraction_of_12h'] * 12 / (hours or 4)  # run budget 4 h, schedule over `hours`

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=4e-4)
    sched = build_scheduler(opt, {'type': 'CpuBudgetCosineLR', 'eta_min': 1e-6, 'hours': 12},
                            budget_progress=progress)
    assert opt.param_groups[0]['lr'] == pytest.approx(4e-4)
    spent['fraction_of_12h'] = 0.5
    opt.step()
    sched.step()
    assert opt.param_groups[0]['lr'] == pytest.approx(1e-6 + 0.5 * (4e-4 - 1e-6))
    spent['fraction_of_12h'] = 2.  # past the horizon: stays at eta_min
    sched.step()
    assert opt.param_groups[0]['lr'] == pytest.approx(1e-6)
    state = sched.state_dict()
    assert 'progress' not in state and state['hours'] == 12
    import io
    torch.save(state, io.BytesIO())  # a training state can hold it (a callable could not be pickled)
    with pytest.raises(ValueError, match='set train.cpu_budget_hours'):
        build_scheduler(opt, {'type': 'CpuBudgetCosineLR'})


def test_cpu_budget_cosine_in_a_resumed_run(work):
    """The LR follows the CPU time of both chunks: the second starts where the first left it."""
    import math
    from gimsanet_arch.inference.network import load_yaml
    base, opt_path = work
    opt = load_yaml(opt_path)
    opt['train']['scheduler'] = {'type': 'CpuBudgetCosineLR', 'eta_min': 0., 'hours': 0.0005}  # 1.8 CPU-s
    opt['logger']['print_freq'] = 1
    cosine_opt = base / 'cosine.yml'
    cosine_opt.write_text(yaml.safe_dump(json.loads(json.dumps(opt))))
    lrs = []
    for total in (3, 6):
        result = run_basicsr(['train', '-opt', str(cosine_opt), '--auto_resume', '--force_yml', 'name=budget_cosine',
                              'val:val_freq=1000', 'train:cpu_budget_hours=1', f'train:total_iter={total}'], base)
        assert result.returncode == 0, result.stderr[-3000:]
        lrs += [float(x) for x in re.findall(r'iter:\s+\d+, lr:\(([\d.e+-]+),\)', result.stdout + result.stderr)]
    exp = base / 'experiments' / 'budget_cosine'
    assert len(lrs) == 6 and lrs == sorted(lrs, reverse=True)  # it only goes down as CPU time is spent
    base_lr = opt['train']['optim_g']['lr']

    def cosine(spent_s):
        return base_lr * 0.5 * (1 + math.cos(math.pi * min(spent_s / 3600. / 0.0005, 1.)))

    def as_logged(lr):  # BasicSR logs the LR as '{:.3e}'; rounding keeps order, so compare rounded values
        return float(f'{lr:.3e}')

    # CPU time only grows: an LR logged before a state was saved is at or above the cosine of that
    # state's count, and the resumed chunk (which starts from that count) is at or below it, so the
    # second chunk continued the first one's schedule instead of restarting at the base LR
    at_3, at_6 = cosine(_state_spent(exp, 3)), cosine(_state_spent(exp, 6))
    assert lrs[2] >= as_logged(at_3) and lrs[5] >= as_logged(at_6)
    assert lrs[3] <= as_logged(at_3) < base_lr


def test_sigterm_saves_at_the_end_of_the_iteration_and_resume_continues(work):
    import os
    import signal
    import subprocess
    import sys
    base, opt = work
    log_path = base / 'sigterm.log'
    cmd = [sys.executable, '-m', 'gimsanet_arch.commands.basicsr_cli', 'train', '-opt', opt, '--auto_resume',
           '--force_yml', 'name=sigterm_stop', 'val:val_freq=100000', 'train:total_iter=100000',
           'logger:save_checkpoint_freq=100000']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while time.time() < deadline and len(re.findall(r'iter:\s+\d+,', log_path.read_text())) < 3:
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    text = log_path.read_text()
    stop = re.search(r'SIGTERM: saving at iter (\d+) and stopping', text)
    assert stop, text[-3000:]
    iteration = int(stop.group(1))
    exp = base / 'experiments' / 'sigterm_stop'
    assert (exp / 'training_states' / f'{iteration}.state').exists()
    assert (exp / 'models' / f'net_g_{iteration}.pth').exists()
    again = run_basicsr(['train', '-opt', opt, '--auto_resume', '--force_yml', 'name=sigterm_stop',
                         'val:val_freq=100000', f'train:total_iter={iteration + 2}'], base)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f'iter: {iteration}' in again.stdout + again.stderr  # resumed where the signal stopped it
