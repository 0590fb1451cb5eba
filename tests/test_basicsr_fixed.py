"""The plugin against a fixed BasicSR: PyPI's ``basicsr-fixed`` (1.4.2 with its import fixed for
today's torchvision), installed with ``--no-deps`` into a temporary folder put first on a
subprocess's path. Rows whose defect is gone become no-ops, and a short training still works.
Needs the package registry: lane ``python -m pytest -m network`` (docs/testing.md)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, run_basicsr
from tiny_data import write_folder

pytestmark = pytest.mark.network


@pytest.fixture(scope='module')
def fixed_basicsr(tmp_path_factory):
    target = tmp_path_factory.mktemp('basicsr_fixed')
    cmd = [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--target', str(target),
           'basicsr-fixed==1.4.2', '-q']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f'pip could not install basicsr-fixed: {result.stderr[-2000:]}')
    return str(target)


def _with(target):
    return {'PYTHONPATH': target + os.pathsep + os.environ.get('PYTHONPATH', '')}


def test_rows_become_no_ops_on_a_fixed_basicsr(fixed_basicsr):
    code = ('import json, gimsanet_arch, basicsr, gimsanet_arch.compat as c; '
            'print(json.dumps({"file": basicsr.__file__, "applied": c.APPLIED}))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **_with(fixed_basicsr)))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['file'].startswith(fixed_basicsr)  # the fixed copy, not the installed basicsr
    applied = report['applied']
    # basicsr-fixed imports rgb_to_grayscale from torchvision.transforms.functional: no stand-in needed
    assert applied['functional_tensor'] is False
    # what it did not fix keeps its row
    assert applied['load_resume_state'] and applied['lmdb_shared_envs'] and applied['worker_seeds']


def test_a_short_training_runs_on_a_fixed_basicsr(fixed_basicsr, tmp_path):
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    opt = os.path.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')
    result = run_basicsr(['train', '-opt', opt, '--force_yml', 'train:total_iter=3'], tmp_path,
                         env=_with(fixed_basicsr))
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Validation TinyVal' in log
    assert (tmp_path / 'experiments' / 'tiny_GIMSANet' / 'training_states' / '3.state').is_file()
