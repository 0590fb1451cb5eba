"""End to end through ``basicsr train`` / ``basicsr test`` on CPU (num_gpu: 0) with a tiny GIMSANet.

The runs fork from a warm interpreter (``run_basicsr_warm``); the ``python -m`` entry points start
fresh ones."""
import glob
import os.path as osp
import re

import pytest
import torch
import yaml

from conftest import REPO_ROOT, run_basicsr_warm

TINY = osp.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')


def _psnrs(text):
    return [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', text)]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train 6 iterations from ``work/``; outputs go to ``root/`` (``--root``)."""
    from tiny_data import write_folder
    base = tmp_path_factory.mktemp('pipeline')
    work, root = base / 'work', base / 'root'
    write_folder(work / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(work / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    result = run_basicsr_warm(['train', '-opt', TINY, '--root', str(root)], work)
    assert result.returncode == 0, result.stderr[-3000:]
    return base, work, root, result


def test_train_writes_basicsr_outputs(trained):
    _, _, root, _ = trained
    exp = root / 'experiments' / 'tiny_GIMSANet'
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_3.pth', 'net_g_6.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['3.state', '6.state']
    ckpt = torch.load(exp / 'models' / 'net_g_6.pth', map_location='cpu')
    assert set(ckpt) == {'params', 'params_ema'}  # EMA is on in the tiny options
    from basicsr.archs import build_network
    net = build_network({'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 8})
    net.load_state_dict(ckpt['params_ema'], strict=True)
    log = glob.glob(str(exp / 'train_*.log'))
    assert log and 'l_pix' in open(log[0]).read() and 'l_grad' in open(log[0]).read()
    assert not (trained[1] / 'experiments').exists()  # nothing under the working directory


def test_auto_resume_from_another_directory(trained):
    base, work, root, _ = trained
    other = base / 'elsewhere'
    other.mkdir()
    data = work / 'datasets' / 'tiny'
    result = run_basicsr_warm(['train', '-opt', TINY, '--root', str(root), '--auto_resume', '--force_yml',
                               'train:total_iter=9', f'datasets:train:dataroot_gt={data / "train"}',
                               f'datasets:val:dataroot_gt={data / "val"}'], other)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Resuming training from epoch' in log and 'iter: 6' in log
    exp = root / 'experiments' / 'tiny_GIMSANet'
    assert (exp / 'models' / 'net_g_9.pth').exists()
    assert not glob.glob(str(root / 'experiments' / 'tiny_GIMSANet_archived_*'))  # not restarted
    assert not (other / 'experiments').exists()


def test_basicsr_test_reproduces_validation_psnr(trained, tmp_path):
    _, work, root, train_result = trained
    final_val_psnr = _psnrs(train_result.stdout + train_result.stderr)[-1]
    opt = yaml.safe_load(open(TINY))
    test_opt = {
        'name': 'tiny_GIMSANet_test', 'model_type': 'DenoiseModel', 'scale': 1, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'test_1': dict(opt['datasets']['val'], dataroot_gt=str(work / 'datasets/tiny/val'))},
        'network_g': opt['network_g'],
        'path': {'pretrain_network_g': str(root / 'experiments/tiny_GIMSANet/models/net_g_6.pth'),
                 'param_key_g': 'params_ema', 'strict_load_g': True},
        'val': {'save_img': True, 'metrics': opt['val']['metrics']},
    }
    path = tmp_path / 'test.yml'
    path.write_text(yaml.safe_dump(test_opt))
    result = run_basicsr_warm(['test', '-opt', str(path)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _psnrs(result.stdout + result.stderr)[-1] == pytest.approx(final_val_psnr, abs=1e-4)
    assert glob.glob(str(tmp_path / 'results' / 'tiny_GIMSANet_test' / 'visualization' / 'TinyVal' / '*.png'))


def test_python_m_entry_points(tmp_path):
    import subprocess
    import sys
    for module in ('gimsanet_arch.train', 'gimsanet_arch.test'):
        result = subprocess.run([sys.executable, '-m', module, '-opt', 'missing.yml'], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and 'option file not found' in result.stderr


def test_loss_falls_over_a_short_run(tmp_path):
    from tiny_data import write_folder
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 2, 32)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 24)
    # 20 iterations halve the loss (measured: the last 5 average 0.28-0.38 of the first 5, seeds 1, 2, 3, 10)
    result = run_basicsr_warm(['train', '-opt', TINY, '--force_yml', 'train:total_iter=20', 'val:val_freq=1000',
                               'logger:save_checkpoint_freq=1000', 'name=tiny_loss_falls',
                               'datasets:train:sigma_type=constant', 'datasets:train:sigma_range=[25]'], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [float(v) for v in re.findall(r'l_pix: ([0-9.e+-]+)', result.stdout + result.stderr)]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_several_validation_sets_are_logged_by_name(tmp_path):
    from tiny_data import write_folder
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 2, 32)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 24)
    opt = yaml.safe_load(open(TINY))
    opt['name'] = 'tiny_multi_val'
    opt['datasets']['val_2'] = dict(opt['datasets']['val'], name='TinyVal_sigma50', sigma_test=50)
    opt['train']['total_iter'] = 3
    path = tmp_path / 'multi.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    result = run_basicsr_warm(['train', '-opt', str(path)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    noisy = {name: float(v) for name, v in
             re.findall(r'Validation (\S+) noisy input \(before denoising\): psnr: ([0-9.]+)', log)}
    assert set(noisy) == {'TinyVal', 'TinyVal_sigma50'}
    assert noisy['TinyVal_sigma50'] < noisy['TinyVal'] - 4  # sigma 50 vs 25: about 6 dB noisier
    assert 'Validation TinyVal\n' in log and 'Validation TinyVal_sigma50\n' in log
