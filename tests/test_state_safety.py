"""Training states load safely (issue 32): weights-only, with an allow-list of exactly what the states
of BasicSR and the plugin hold (optimizer and scheduler state, ``Counter``, the RNG states: NumPy
arrays and dtypes under their NumPy 1 and NumPy 2 names). A crafted state, given as
``path.resume_state`` or found as the newest state by ``--auto_resume``, is refused in one line
naming the file and the refused global, and its payload never runs; ``--trust-checkpoint`` (also in
``basicsr test``) loads with full pickle.

The runs fork from a warm interpreter (tests/warm_python.py), one thread each, as test_crash_resume's."""
import datetime
import io
import os
import os.path as osp
import shutil
import sys
import zipfile

import pytest
import torch
import yaml

import warm_python
from test_crash_resume import make_images, write_opt


class _RunsCode:
    """Unpickling this calls ``os.system`` on a command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _train(opt_path, root, *extra):
    return {'argv': ['-m', 'gimsanet_arch.commands.basicsr_cli', 'train', '-opt', opt_path, '--root', root, *extra],
            'cwd': root, 'env': {'OMP_NUM_THREADS': '1'}, 'timeout': 300}


def _finished(result):
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    return out


def _refused(result, *words):
    """Exit 2, one line on stderr, no traceback, no torch advice to load with full pickle."""
    assert result.returncode == 2, (result.stdout + result.stderr)[-4000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-4000:]
    assert 'weights_only' not in result.stderr and 'Re-running' not in result.stderr, lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _listing(folder):
    return sorted(osp.relpath(osp.join(r, n), folder) for r, _, names in os.walk(folder) for n in names)


def test_states_of_real_runs_resume_and_crafted_ones_are_refused(tmp_path):
    """Two tiny runs written by the current code, each stopped and resumed with ``--auto_resume``:
    one with DataLoader workers and ``MultiStepLR`` (a ``Counter`` of milestones), one with the CPU
    budget and its scheduler (``gimsanet_cpu_budget``). Then a crafted newest state in the first
    run's folder: refused, the payload never runs, the folder untouched; a state with a harmless
    global the allow-list lacks loads with ``--trust-checkpoint`` only."""
    root = str(tmp_path)
    make_images(tmp_path / 'datasets' / 'tiny' / 'train', 4, size=32)
    make_images(tmp_path / 'datasets' / 'tiny' / 'val', 1, size=32, seed=1)
    workers = ['--force_yml', 'datasets:train:num_worker_per_gpu=2', 'val:val_freq=1000']
    budget = ['--force_yml', 'val:val_freq=1000']
    seeded = write_opt(root, 'seeded')
    budgeted = write_opt(root, 'budgeted', cpu_budget_hours=1, scheduler={'type': 'CpuBudgetCosineLR', 'eta_min': 1e-6})
    for result in warm_python.run_many([_train(seeded, root, *workers, 'train:total_iter=6'),
                                        _train(budgeted, root, *budget, 'train:total_iter=4')], parallel=2):
        _finished(result)
    resumed = warm_python.run_many([_train(seeded, root, *workers, 'train:total_iter=8', '--auto_resume'),
                                    _train(budgeted, root, *budget, 'train:total_iter=6', '--auto_resume')],
                                   parallel=2)
    out = _finished(resumed[0])
    assert 'Resuming training from epoch: 1, iter: 6' in out
    assert 'skipping 2 already-trained batch(es); RNG states restored' in out
    out = _finished(resumed[1])
    assert 'iter: 4' in out and 'CPU budget so far' in out

    from gimsanet_arch.training.safe_state import load_state_file
    for name, it in (('seeded', 8), ('budgeted', 6)):
        state = load_state_file(osp.join(root, 'experiments', name, 'training_states', f'{it}.state'))
        assert state['iter'] == it and state['gimsanet_resume']['rng_states']
    assert 'gimsanet_cpu_budget' in state

    # a crafted newest state (and the checkpoint --auto_resume checks beside it)
    run = osp.join(root, 'experiments', 'seeded')
    states, models = osp.join(run, 'training_states'), osp.join(run, 'models')
    marker = tmp_path / 'pwned'
    evil = osp.join(states, '10.state')
    torch.save({'epoch': 1, 'iter': 10, 'optimizers': [], 'schedulers': [], 'x': _RunsCode(marker)}, evil)
    shutil.copy(osp.join(models, 'net_g_8.pth'), osp.join(models, 'net_g_10.pth'))
    before = _listing(root)
    line = _refused(warm_python.run(**_train(seeded, root, *workers, 'train:total_iter=12', '--auto_resume')),
                    evil, 'system', '--trust-checkpoint')
    assert line.startswith('basicsr train: error: --auto_resume:')
    assert not marker.exists() and _listing(root) == before

    # a harmless global the allow-list lacks: refused by name, then loaded when trusted
    state = load_state_file(osp.join(states, '8.state'))
    state.update(iter=10, note=datetime.date(2024, 1, 1))
    torch.save(state, evil)
    _refused(warm_python.run(**_train(seeded, root, *workers, 'train:total_iter=12', '--auto_resume')),
             evil, 'datetime.date')
    out = _finished(warm_python.run(**_train(seeded, root, *workers, 'train:total_iter=12', '--auto_resume',
                                             '--trust-checkpoint')))
    assert 'Resuming training from epoch: 1, iter: 10' in out
    assert osp.isfile(osp.join(models, 'net_g_12.pth'))


def test_a_crafted_resume_state_is_refused_before_anything_runs(tmp_path):
    """``path.resume_state`` naming a crafted file (a shared option file): one line naming the file and
    ``os.system``; nothing runs, no run folder is made."""
    root = str(tmp_path)
    make_images(tmp_path / 'datasets' / 'tiny' / 'train', 4, size=32)
    make_images(tmp_path / 'datasets' / 'tiny' / 'val', 1, size=32, seed=1)
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.state'
    torch.save({'epoch': 0, 'iter': 2, 'optimizers': [], 'schedulers': [], 'x': _RunsCode(marker)}, evil)
    opt = write_opt(root, 'victim')
    before = _listing(root)
    result = warm_python.run(**_train(opt, root, '--force_yml', f'path:resume_state={evil}'))
    line = _refused(result, str(evil), 'system', '--trust-checkpoint')
    assert line.startswith('basicsr train: error: path.resume_state:')
    assert not marker.exists() and _listing(root) == before
    assert not osp.exists(osp.join(root, 'experiments'))


# ----------------------------------------------------------------------------- in process
def _rng_state():
    """What the plugin writes: BasicSR's fields, a Counter (MultiStepRestartLR), the RNG states."""
    import collections
    import random

    import numpy as np
    return {'epoch': 0, 'iter': 3, 'optimizers': [torch.optim.Adam([torch.nn.Parameter(torch.ones(2))]).state_dict()],
            'schedulers': [{'milestones': collections.Counter([1000]), 'last_epoch': 3}],
            'gimsanet_cpu_budget': {'limit_s': 3600., 'spent_s': 1.5, 'wall_s': 2.},
            'gimsanet_resume': {'version': 1, 'data_position': None,
                                'rng_states': [{'python': random.getstate(), 'numpy': np.random.get_state(),
                                                'torch': torch.get_rng_state()}]}}


def _renamed_numpy_module(path, old, new):
    """Rewrite a torch.save zip so that its pickle names NumPy's module ``new`` instead of ``old``
    (what the same state pickled under the other NumPy major version looks like)."""
    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as dst:
        for name, data in members:
            if name.endswith('data.pkl'):
                assert old.encode() in data
                data = data.replace(old.encode() + b'\n', new.encode() + b'\n')
            dst.writestr(name, data)
    with open(path, 'wb') as f:
        f.write(buf.getvalue())


def test_the_allow_list_covers_numpy_1_and_2_names_and_nothing_else(tmp_path):
    import numpy as np
    from gimsanet_arch.training.safe_state import RefusedStateError, load_state_file
    path = str(tmp_path / '3.state')
    state = _rng_state()
    torch.save(state, path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # torch's own list lacks the NumPy RNG state
    loaded = load_state_file(path)
    assert loaded['schedulers'] == state['schedulers']
    assert np.array_equal(loaded['gimsanet_resume']['rng_states'][0]['numpy'][1], state['gimsanet_resume'][
        'rng_states'][0]['numpy'][1])
    this = 'numpy._core.multiarray' if np.__version__.startswith('2') else 'numpy.core.multiarray'
    other = 'numpy.core.multiarray' if this.startswith('numpy._core') else 'numpy._core.multiarray'
    _renamed_numpy_module(path, this, other)
    again = load_state_file(path)
    assert again['gimsanet_resume']['rng_states'][0]['numpy'][0] == 'MT19937'
    # the allow-list holds inside the loader only: torch's own default is left as it was
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    torch.save({'iter': 1, 'when': datetime.date(2024, 1, 1)}, path)
    with pytest.raises(RefusedStateError, match='datetime.date') as err:
        load_state_file(path)
    assert len(str(err.value).splitlines()) == 1 and 'weights_only' not in str(err.value)
    assert load_state_file(path, trust=True)['when'] == datetime.date(2024, 1, 1)


def test_explicit_and_auto_resume_refuse_a_payload_and_trust_loads_it(tmp_path):
    from gimsanet_arch.training.resume import ResumeError, load_resume_state
    from gimsanet_arch.training.checkpoint import atomic_torch_save
    exp = tmp_path / 'experiments' / 'x'
    marker = tmp_path / 'pwned'
    atomic_torch_save({'params': {'w': torch.ones(3)}}, str(exp / 'models' / 'net_g_5.pth'))
    atomic_torch_save({'epoch': 0, 'iter': 5, 'optimizers': [], 'schedulers': [], 'x': _RunsCode(marker)},
                      str(exp / 'training_states' / '5.state'))
    atomic_torch_save({'epoch': 0, 'iter': 4, 'optimizers': [], 'schedulers': []},
                      str(exp / 'training_states' / '4.state'))
    atomic_torch_save({'params': {'w': torch.ones(3)}}, str(exp / 'models' / 'net_g_4.pth'))

    def opt(**path):
        return {'name': 'x', 'num_gpu': 0, 'network_g': {'type': 'GIMSANet'},
                'path': dict(models=str(exp / 'models'), training_states=str(exp / 'training_states'), **path)}

    with pytest.raises(ResumeError, match=r'^--auto_resume: training state .*5\.state needs .*system') as err:
        load_resume_state(dict(opt(), auto_resume=True))  # not skipped for the older, clean state: refused
    assert len(str(err.value).splitlines()) == 1 and 'weights_only' not in str(err.value)
    with pytest.raises(ResumeError, match=r'^path.resume_state: training state .*5\.state needs .*system'):
        load_resume_state(opt(resume_state=str(exp / 'training_states' / '5.state')))
    assert not marker.exists()
    state = load_resume_state(dict(opt(trust_checkpoint=True), auto_resume=True))
    assert state['iter'] == 5 and marker.exists()  # trusting a file means running what it holds


def test_basicsr_test_passes_trust_checkpoint_on(tmp_path, capsys, monkeypatch):
    """The error message advises ``--trust-checkpoint``: ``basicsr test`` must honour it."""
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    from gimsanet_arch.commands.basicsr_cli import run
    make_images(tmp_path / 'val', 1, size=32, seed=1)
    ckpt = tmp_path / 'dated.pth'
    torch.save({'params': GIMSANet(num_feat=8).state_dict(), 'saved': datetime.date(2024, 1, 1)}, ckpt)
    val = {'name': 'v', 'type': 'GaussianNoiseDataset', 'dataroot_gt': str(tmp_path / 'val'),
           'io_backend': {'type': 'disk'}, 'in_ch': 3, 'sigma_test': 25}
    test_opt = {'name': 'trusted', 'model_type': 'DenoiseModel', 'scale': 1, 'num_gpu': 0, 'datasets': {'test_1': val},
                'network_g': {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 8},
                'path': {'pretrain_network_g': str(ckpt)},
                'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}}}
    opt_path = tmp_path / 'test.yml'
    opt_path.write_text(yaml.safe_dump(test_opt))
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    assert run('test', ['-opt', str(opt_path), '--root', str(tmp_path)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and 'datetime.date' in lines[0] and '--trust-checkpoint' in lines[0]
    assert run('test', ['-opt', str(opt_path), '--root', str(tmp_path), '--trust-checkpoint']) == 0
    assert osp.isdir(tmp_path / 'results' / 'trusted')
