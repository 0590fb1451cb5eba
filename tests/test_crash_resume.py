"""Crash safety: SIGKILL a real training run mid-run and mid-save, ``--auto_resume`` finishes it,
and the result equals an uninterrupted run's bit for bit.

The guarantee checked here is the *exact* one (``num_worker_per_gpu: 0``, CPU prefetcher): the
final weights, EMA weights, optimizer and scheduler state after kill + resume + kill + resume are
identical to those of an uninterrupted run with the same seed, including a resume in the middle of
an epoch (BasicSR alone would repeat that epoch's first batches and restart the RNG streams).
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
import warnings

import cv2
import numpy as np
import pytest
import torch
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_OPT = osp.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')


def make_images(folder, n, size=48, seed=0, channels=3):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        img = cv2.GaussianBlur((rng.rand(size, size, channels) * 255).astype(np.uint8), (5, 5), 2)
        cv2.imwrite(osp.join(folder, f'im{i}.png'), img)


def write_opt(root, name, **train):
    with open(TINY_OPT) as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    opt['train'].update(total_iter=10, **train)
    opt['logger'].update(save_checkpoint_freq=2, print_freq=1)
    opt['val'].update(val_freq=3, save_img=False)
    path = osp.join(root, f'{name}.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


def start(opt_path, root, *extra, save_delay=None):
    """``basicsr train`` in a subprocess; ``save_delay`` holds every save that many seconds
    between its write and its rename (tests/slow_save_cli.py)."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    prefix = ['-m', 'gimsanet_arch.commands.basicsr_cli'] if save_delay is None else [
        osp.join(REPO_ROOT, 'tests', 'slow_save_cli.py'), str(save_delay)]
    cmd = [sys.executable, *prefix, 'train', '-opt', opt_path, '--root', root, *extra]
    return subprocess.Popen(cmd, cwd=root, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, proc, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f'training ended (rc {proc.returncode}) before the kill point:\n{proc.stdout.read()}')
        time.sleep(0.02)
    proc.kill()
    raise AssertionError('timed out waiting for the kill point')


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()


def finish(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_same_tensors(a, b, what):
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f'{what}: {key} differs'


@pytest.fixture
def data_root(tmp_path):
    make_images(tmp_path / 'datasets' / 'tiny' / 'train', 4)
    make_images(tmp_path / 'datasets' / 'tiny' / 'val', 1, seed=1)
    return tmp_path


def newest_state(states):
    return max(int(n[:-6]) for n in os.listdir(states) if n.endswith('.state') and n[:-6].isdigit())


def test_sigkill_mid_run_and_mid_save_then_auto_resume_equals_uninterrupted(data_root):
    """4 batches per epoch, a save every 2 iterations, validation every 3 (validation must not shift
    the training RNG either). Kill 1 lands right after the iteration-6 save (mid-epoch 1), kill 2
    between writing the next state and renaming it; a truncated newer state (what a plain
    ``torch.save`` leaves) is planted too."""
    root = str(data_root)
    ref_opt, crash_opt = write_opt(root, 'ref'), write_opt(root, 'crash')
    ref = start(ref_opt, root)  # the uninterrupted run, in parallel with the crashing one
    exp = osp.join(root, 'experiments', 'crash')
    states, models = osp.join(exp, 'training_states'), osp.join(exp, 'models')

    # 1) mid-run: kill as soon as the iteration-6 state is complete (training goes on meanwhile)
    proc = start(crash_opt, root, save_delay=0.3)
    wait_for(lambda: osp.exists(osp.join(states, '6.state')), proc)
    kill(proc)
    resumed = newest_state(states)  # 6, or 8 if the kill came late
    epoch = (resumed - 1) // 4

    # 2) resume, then kill mid-save: the next net_g file written, its .state only a temp file
    nxt = resumed + 2
    proc = start(crash_opt, root, '--auto_resume', save_delay=2)
    wait_for(lambda: any(n.startswith(f'.{nxt}.state.') for n in os.listdir(states)), proc)
    kill(proc)
    assert not osp.exists(osp.join(states, f'{nxt}.state'))
    assert osp.exists(osp.join(models, f'net_g_{nxt}.pth'))
    assert [n for n in os.listdir(states) if n.endswith('.tmp')], 'the kill should leave a temp file'
    # what a plain (non-atomic) torch.save killed mid-write leaves: a truncated newer state
    with open(osp.join(states, f'{resumed}.state'), 'rb') as f:
        blob = f.read()
    with open(osp.join(states, f'{nxt + 2}.state'), 'wb') as f:
        f.write(blob[:len(blob) // 2])

    # 3) resume again: skips the truncated state and the temp file, resumes mid-epoch, finishes
    out = finish(start(crash_opt, root, '--auto_resume'))
    assert f'skipping training state {osp.join(states, f"{nxt + 2}.state")}' in out
    assert f'Resuming training from epoch: {epoch}, iter: {resumed}' in out
    assert f'skipping {resumed - 4 * epoch} already-trained batch(es); RNG states restored' in out
    assert not [n for n in os.listdir(states) + os.listdir(models) if n.endswith('.tmp')]
    finish(ref)

    ref_exp = osp.join(root, 'experiments', 'ref')
    for name in ('net_g_latest.pth', 'net_g_10.pth', f'net_g_{nxt}.pth'):
        a, b = load(osp.join(ref_exp, 'models', name)), load(osp.join(models, name))
        assert_same_tensors(a['params'], b['params'], f'{name} params')
        assert_same_tensors(a['params_ema'], b['params_ema'], f'{name} params_ema')
    a, b = load(osp.join(ref_exp, 'training_states', '10.state')), load(osp.join(states, '10.state'))
    assert (a['epoch'], a['iter']) == (b['epoch'], b['iter'])
    assert a['schedulers'] == b['schedulers']
    for sa, sb in zip(a['optimizers'][0]['state'].values(), b['optimizers'][0]['state'].values()):
        assert_same_tensors(sa, sb, 'optimizer state')


def _fake_run(tmp_path, iters):
    """A run folder with states/checkpoints for ``iters``, written the way BasicSR does."""
    from gimsanet_arch.training.checkpoint import atomic_torch_save
    exp = tmp_path / 'experiments' / 'x'
    for it in iters:
        atomic_torch_save({'params': {'w': torch.full((3, ), float(it))}}, str(exp / 'models' / f'net_g_{it}.pth'))
        atomic_torch_save({'epoch': 0, 'iter': it, 'optimizers': [], 'schedulers': []},
                          str(exp / 'training_states' / f'{it}.state'))
    opt = {'name': 'x', 'num_gpu': 0, 'auto_resume': True, 'network_g': {'type': 'GIMSANet'},
           'path': {'models': str(exp / 'models'), 'training_states': str(exp / 'training_states')}}
    return exp, opt


@pytest.mark.parametrize('damage, expected', [
    ('none', 30),
    ('truncate_state', 20),
    ('empty_state', 20),
    ('missing_net', 20),
    ('truncate_net', 20),
    ('wrong_iter', 20),
    ('all', None),
    ('states_removed', None),
])
def test_auto_resume_picks_newest_complete_state(tmp_path, damage, expected):
    from gimsanet_arch.training.resume import ResumeError, ResumeWarning, load_resume_state
    exp, opt = _fake_run(tmp_path, [10, 20, 30])
    state30, net30 = exp / 'training_states' / '30.state', exp / 'models' / 'net_g_30.pth'
    if damage == 'truncate_state':
        state30.write_bytes(state30.read_bytes()[:100])
    elif damage == 'empty_state':
        state30.write_bytes(b'')
    elif damage == 'missing_net':
        net30.unlink()
    elif damage == 'truncate_net':
        net30.write_bytes(net30.read_bytes()[:-30])
    elif damage == 'wrong_iter':
        state30.write_bytes((exp / 'training_states' / '10.state').read_bytes())
    elif damage == 'all':
        for path in (exp / 'training_states').iterdir():
            path.write_bytes(b'x')
    elif damage == 'states_removed':  # a finished run: final checkpoints kept, states deleted
        for path in (exp / 'training_states').iterdir():
            path.unlink()
    (exp / 'models' / '.net_g_40.pth.abc.tmp').write_bytes(b'partial')  # a killed atomic save
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        if expected is None:  # checkpoints but nothing to resume: refused, not restarted from iteration 0
            with pytest.raises(ResumeError, match=r'net_g_30\.pth exists but no complete training state'):
                load_resume_state(opt)
        else:
            state = load_resume_state(opt)
    skipped = [str(w.message) for w in caught if issubclass(w.category, ResumeWarning)]
    if expected is None:
        assert len(skipped) == (3 if damage == 'all' else 0)
        return
    assert state['iter'] == expected
    assert opt['path']['resume_state'].endswith(f'{expected}.state')
    assert opt['path']['pretrain_network_g'].endswith(f'net_g_{expected}.pth')
    assert len(skipped) == (0 if damage == 'none' else 1)
    assert all('30.state' in message for message in skipped)
    assert not (exp / 'models' / '.net_g_40.pth.abc.tmp').exists()


def test_auto_resume_of_a_finished_safetensors_run_is_refused(tmp_path):
    """``logger.save_checkpoint_format: safetensors`` saves no .pth: a finished run (states removed)
    is still seen as one, not archived and restarted from iteration 0 (issue 32)."""
    from gimsanet_arch.training.resume import ResumeError, load_resume_state
    from gimsanet_arch.training.safetensors_io import save_safetensors_checkpoint
    exp, opt = _fake_run(tmp_path, [10, 20])
    for it in (10, 20):
        pth = exp / 'models' / f'net_g_{it}.pth'
        save_safetensors_checkpoint(torch.load(pth, weights_only=True), str(pth.with_suffix('.safetensors')))
        pth.unlink()
        (exp / 'training_states' / f'{it}.state').unlink()
    with pytest.raises(ResumeError, match=r'net_g_20\.safetensors exists but no complete training state'):
        load_resume_state(opt)


def test_auto_resume_without_checkpoints_starts_fresh(tmp_path):
    """A run folder that saved nothing yet (killed before its first save) starts again, as in BasicSR."""
    from gimsanet_arch.training.resume import load_resume_state
    exp, opt = _fake_run(tmp_path, [])
    (exp / 'models').mkdir(parents=True)
    (exp / 'models' / 'net_g_latest.pth').write_bytes(b'')  # not a numbered checkpoint
    assert load_resume_state(opt) is None


def test_explicit_resume_state_that_is_truncated_is_a_clear_error(tmp_path):
    from gimsanet_arch.training.resume import load_resume_state
    exp, opt = _fake_run(tmp_path, [10])
    path = exp / 'training_states' / '10.state'
    path.write_bytes(path.read_bytes()[:50])
    opt.update(auto_resume=False)
    opt['path']['resume_state'] = str(path)
    with pytest.raises(RuntimeError, match=r'path.resume_state: cannot load training state .*10.state'):
        load_resume_state(opt)


def test_atomic_save_never_exposes_a_partial_file(tmp_path):
    from gimsanet_arch.training.checkpoint import atomic_torch_save

    class Boom:
        def __reduce__(self):
            raise KeyboardInterrupt  # interrupted half-way through pickling

    target = tmp_path / 'net.pth'
    atomic_torch_save({'a': torch.ones(2)}, str(target))
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({'a': torch.zeros(1000), 'b': Boom()}, str(target))
    assert torch.equal(torch.load(target, weights_only=True)['a'], torch.ones(2))  # previous file intact
    assert os.listdir(tmp_path) == ['net.pth']  # no temp file left
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
