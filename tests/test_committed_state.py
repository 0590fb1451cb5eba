"""A training state written by older code (tests/fixtures/resume_state_v1) still resumes exactly."""
import os
import shutil

import torch

from conftest import REPO_ROOT, run_basicsr
from tiny_data import write_folder

FIXTURE = os.path.join(REPO_ROOT, 'tests', 'fixtures', 'resume_state_v1')
OPTIONS = os.path.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')
FORCED = ['train:cpu_budget_hours=1', 'val:val_freq=1000', 'train:total_iter=6']


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_a_state_from_older_code_resumes_exactly(tmp_path):
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    old = tmp_path / 'experiments' / 'committed_state'
    (old / 'training_states').mkdir(parents=True)
    (old / 'models').mkdir()
    shutil.copy(os.path.join(FIXTURE, '3.state'), old / 'training_states')
    shutil.copy(os.path.join(FIXTURE, 'net_g_3.pth'), old / 'models')

    resumed = run_basicsr(['train', '-opt', OPTIONS, '--auto_resume', '--force_yml', 'name=committed_state', *FORCED],
                          tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert 'Resuming training from epoch: 0, iter: 3' in log
    assert 'RNG states restored' in log and 'CPU budget so far' in log

    fresh = run_basicsr(['train', '-opt', OPTIONS, '--force_yml', 'name=uninterrupted', *FORCED], tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    a = _weights(old / 'models' / 'net_g_latest.pth')
    b = _weights(tmp_path / 'experiments' / 'uninterrupted' / 'models' / 'net_g_latest.pth')
    for group in ('params', 'params_ema'):
        assert a[group].keys() == b[group].keys()
        for key in a[group]:
            # equal on the machine that wrote the fixture; a tolerance for another CPU's float rounding
            torch.testing.assert_close(a[group][key], b[group][key], rtol=1e-4, atol=1e-6, msg=f'{group}.{key}')
    state = torch.load(old / 'training_states' / '6.state', map_location='cpu', weights_only=False)
    saved = torch.load(os.path.join(FIXTURE, '3.state'), map_location='cpu', weights_only=False)
    assert state['gimsanet_cpu_budget']['spent_s'] > saved['gimsanet_cpu_budget']['spent_s']
