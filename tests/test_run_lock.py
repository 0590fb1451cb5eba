"""Two trainings with one name: the second refuses while the first runs (real concurrent processes),
the first run's folder is left as it was, and a lock left by a dead process is taken over.

The first run, stopped from outside, is a fresh interpreter; the others fork from a warm one
(``run_basicsr_warm``)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT, run_basicsr_warm
from gimsanet_arch.training.run_lock import LOCK_NAME, RunLock, RunLockError, holder

TINY_OPT = f'{REPO_ROOT}/tests/options/train_GIMSANet_tiny.yml'


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    from tiny_data import write_folder
    base = tmp_path_factory.mktemp('lock')
    write_folder(base / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(base / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    return base


def _listing(folder):
    return sorted(os.path.relpath(os.path.join(r, n), folder) for r, _, names in os.walk(folder) for n in names)


def test_a_second_run_with_the_same_name_refuses_while_the_first_runs(work):
    log_path = work / 'first.log'
    cmd = [sys.executable, '-m', 'gimsanet_arch.commands.basicsr_cli', 'train', '-opt', TINY_OPT, '--force_yml',
           'name=shared', 'val:val_freq=100000', 'train:total_iter=100000', 'logger:save_checkpoint_freq=5']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    with open(log_path, 'w') as log:
        first = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 240
            while time.time() < deadline and len(re.findall(r'iter:\s+\d+,', log_path.read_text())) < 2:
                time.sleep(0.5)
            exp = work / 'experiments' / 'shared'
            assert holder(str(exp)) and f'pid {first.pid}' in holder(str(exp))
            second = run_basicsr_warm(['train', '-opt', TINY_OPT, '--force_yml', 'name=shared', 'train:total_iter=3'],
                                      work)
            assert second.returncode == 2 and 'Traceback' not in second.stderr
            lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and 'experiments/shared is in use by a training that is still running' in lines[0]
            assert f'pid {first.pid}' in lines[0]
            assert not [p for p in os.listdir(work / 'experiments') if p.startswith('shared_archived')]
            assert first.poll() is None  # the first run goes on, in its own folder
        finally:
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=120) == 0
    assert not (work / 'experiments' / 'shared' / LOCK_NAME).exists()  # a clean exit removes it
    assert any(name.endswith('.state') for name in os.listdir(work / 'experiments' / 'shared' / 'training_states'))


def test_a_lock_left_by_a_dead_process_is_taken_over(work):
    args = ['train', '-opt', TINY_OPT, '--auto_resume', '--force_yml', 'name=crashed', 'val:val_freq=100000',
            'logger:save_checkpoint_freq=2']
    assert run_basicsr_warm(args + ['train:total_iter=2'], work).returncode == 0
    exp = work / 'experiments' / 'crashed'
    (exp / LOCK_NAME).write_text('pid 999999 on somewhere, started 2026-01-01T00:00:00\n')  # as a killed run leaves it
    assert holder(str(exp)) is None  # nobody holds the flock: stale
    result = run_basicsr_warm(args + ['train:total_iter=4'], work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'took over the run lock left by pid 999999' in result.stdout + result.stderr


def test_the_lock_is_exclusive_within_a_machine(tmp_path):
    lock = RunLock(str(tmp_path))
    try:
        with pytest.raises(RunLockError, match=f'pid {os.getpid()}'):
            RunLock(str(tmp_path))
    finally:
        lock.release()
    RunLock(str(tmp_path)).release()
