"""A disk that fills up during a checkpoint save: one clear error line, the previous
checkpoint and training state stay loadable, and ``--auto_resume`` continues once there is space.

The run itself needs a small tmpfs (``mount -t tmpfs``, root only): it is skipped where mounting is
not permitted. The conversion of the error is also checked without a mount.
"""
import errno
import os
import os.path as osp
import shutil
import subprocess

import pytest
import torch

from test_crash_resume import load, make_images, start, write_opt


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs at ``tmp_path/disk`` (skips when it cannot be mounted)."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    if not hasattr(os, 'geteuid') or os.geteuid() != 0 or not shutil.which('mount'):
        pytest.skip('mounting a tmpfs needs root')
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {mounted.stderr.strip()}')
    yield disk
    subprocess.run(['umount', '-l', str(disk)], capture_output=True)


def fill_leaving(disk, free_bytes):
    """Write a filler file so that about ``free_bytes`` stay free on ``disk``."""
    filler = disk / 'filler'
    size = shutil.disk_usage(disk).free - free_bytes
    with open(filler, 'wb') as f:
        block = b'\0' * (1 << 20)
        while size > 0:
            f.write(block[:min(size, len(block))])
            size -= len(block)
    return filler


def run(proc):
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def test_disk_full_during_save_then_auto_resume(small_disk):
    root = str(small_disk)
    make_images(small_disk / 'datasets' / 'tiny' / 'train', 4, size=32)
    make_images(small_disk / 'datasets' / 'tiny' / 'val', 1, size=32, seed=1)
    opt = write_opt(root, 'full')
    exp = osp.join(root, 'experiments', 'full')
    models, states = osp.join(exp, 'models'), osp.join(exp, 'training_states')

    # 1) two iterations with space: net_g_2.pth and 2.state
    code, out = run(start(opt, root, '--force_yml', 'train:total_iter=2'))
    assert code == 0, out
    net_size = osp.getsize(osp.join(models, 'net_g_2.pth'))

    # 2) the disk fills up: room for the log, not for the next checkpoint (iteration 4)
    filler = fill_leaving(small_disk, net_size // 2)
    code, out = run(start(opt, root, '--auto_resume', '--force_yml', 'train:total_iter=6'))
    assert code == 2, out
    errors = [line for line in out.splitlines() if 'error' in line.lower()]
    assert len(errors) == 1, out
    assert errors[0].startswith(f'basicsr train: error: no space left on device while saving '
                                f'{osp.join(models, "net_g_4.pth")} (No space left on device'), errors
    assert 'rerun with --auto_resume' in errors[0]
    assert 'Traceback' not in out and 'Just ignore it' not in out  # BasicSR would retry, then train on unsaved
    assert sorted(os.listdir(models)) == ['net_g_2.pth', 'net_g_latest.pth']  # no temp file left
    assert sorted(os.listdir(states)) == ['2.state']
    assert load(osp.join(states, '2.state'))['iter'] == 2
    assert load(osp.join(models, 'net_g_2.pth'))['params'].keys()

    # 3) space is back: --auto_resume continues from iteration 2 and finishes
    filler.unlink()
    code, out = run(start(opt, root, '--auto_resume', '--force_yml', 'train:total_iter=6'))
    assert code == 0, out
    assert 'Resuming training from epoch: 0, iter: 2' in out
    assert sorted(os.listdir(states)) == ['2.state', '4.state', '6.state']


@pytest.mark.parametrize('fmt', ['pth', 'safetensors'])
def test_a_full_disk_ends_the_save_instead_of_being_retried_and_ignored(tmp_path, monkeypatch, fmt):
    """No mount needed: an ``OSError(ENOSPC)`` during a DenoiseModel checkpoint save (which torch.save
    wraps in a ``RuntimeError``) becomes :class:`DiskFullError` and leaves the model's
    ``save_network`` (BasicSR's would retry, log "Just ignore it" and train on unsaved); the previous
    file stays and no temp file is left."""
    import safetensors.torch
    from gimsanet_arch.models.training_state import TrainingState
    from gimsanet_arch.training.checkpoint import DiskFullError

    class Model(TrainingState):  # the mixin alone, on a model-like object
        opt = {'rank': 0, 'path': {'models': str(tmp_path)}, 'logger': {'save_checkpoint_format': fmt}}

        def get_bare_model(self, net):
            return net

    def fills_the_disk(*args, **kwargs):
        raise RuntimeError('writing failed') from OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    net = torch.nn.Conv2d(1, 1, 1)
    Model().save_network(net, 'net_g', 4)
    path = tmp_path / f'net_g_4.{fmt}'
    before = path.read_bytes()
    monkeypatch.setattr(torch, 'save', fills_the_disk)
    monkeypatch.setattr(safetensors.torch, 'save_file', fills_the_disk)
    with torch.no_grad():
        net.weight.fill_(7.)
    with pytest.raises(DiskFullError, match=r'no space left on device while saving .*net_g_4\.'):
        Model().save_network(net, 'net_g', 4)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
