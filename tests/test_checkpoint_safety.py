"""Checkpoints load safely: a pickle that would run code is refused unless trusted, a file that is no
checkpoint is one line, and .safetensors files load (BasicSR's params/params_ema kept)."""
import os

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.inference import network
from gimsanet_arch.training.checkpoint import CheckpointError, load_checkpoint_file, load_network_checked
from gimsanet_arch.training.safetensors_io import load_safetensors_checkpoint, save_safetensors_checkpoint


class _RunsCode:
    """Unpickling this calls ``os.system`` on a command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _malicious(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    state = GIMSANet(num_feat=4).state_dict()
    torch.save({'params': state, 'extra': _RunsCode(marker)}, path)
    return path, marker


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    path, marker = _malicious(tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint_file(str(path))
    message = str(err.value)
    assert str(path) in message and 'system' in message and '--trust-checkpoint' in message
    assert len(message.splitlines()) == 1
    assert not marker.exists()
    # the explicit opt-in loads it with full pickle (and so runs it: that is what trusting means)
    loaded = load_checkpoint_file(str(path), trust=True)
    assert 'params' in loaded and marker.exists()


def test_the_denoise_command_refuses_it_in_one_line(tmp_path):
    path, marker = _malicious(tmp_path)
    cv2.imwrite(str(tmp_path / 'p.png'), np.full((8, 8, 3), 100, np.uint8))
    import warm_python  # the command in a process forked from a warm interpreter
    proc = warm_python.run(['-m', 'gimsanet_arch.denoise', str(tmp_path / 'p.png'), '-o', str(tmp_path / 'out'),
                            '--arch', 'GIMSANet', '--arch-args', '{num_feat: 4}', '--weights', str(path),
                            '--no-progress'], tmp_path, timeout=300, defaults={})
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and 'weights-only loading refuses' in proc.stderr
    assert not marker.exists() and not (tmp_path / 'out' / 'p.png').exists()


@pytest.mark.parametrize('content', [b'hello, I am a text file\n', b'PK\x03\x04 truncated zip', b''])
def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path, content):
    path = tmp_path / 'notes.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match='cannot read checkpoint .*notes.pth') as err:
        load_checkpoint_file(str(path))
    assert len(str(err.value).splitlines()) == 1


def test_safetensors_keeps_params_and_params_ema(tmp_path):
    torch.manual_seed(0)
    plain, ema = GIMSANet(num_feat=4), GIMSANet(num_feat=4)
    both = tmp_path / 'both.safetensors'
    save_safetensors_checkpoint({'params': plain.state_dict(), 'params_ema': ema.state_dict()}, str(both))
    loaded = load_checkpoint_file(str(both))
    assert set(loaded) == {'params', 'params_ema'}
    for name, net in (('params', plain), ('params_ema', ema)):
        target = GIMSANet(num_feat=4)
        load_network_checked(target, str(both), param_key=name)
        for a, b in zip(target.state_dict().values(), net.state_dict().values()):
            assert torch.equal(a, b)
    # one group: bare keys (what spandrel and traiNNer read), the group named in the metadata
    one = tmp_path / 'one.safetensors'
    save_safetensors_checkpoint({'params': plain.state_dict()}, str(one))
    from safetensors.torch import load_file
    assert set(load_file(str(one))) == set(plain.state_dict())
    assert set(load_safetensors_checkpoint(str(one))) == {'params'}
    # a file another tool wrote (no metadata): a bare state_dict
    from safetensors.torch import save_file
    bare = tmp_path / 'bare.safetensors'
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(bare))
    load_network_checked(GIMSANet(num_feat=4), str(bare))
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{not json}......')
    with pytest.raises(CheckpointError, match='not a valid .safetensors file'):
        load_checkpoint_file(str(bad))


def test_option_files_and_specs_carry_the_trust_opt_in(tmp_path):
    path, marker = _malicious(tmp_path)
    opt = {'network_g': {'type': 'GIMSANet', 'num_feat': 4}, 'path': {'pretrain_network_g': str(path)}}
    spec = network.spec_from_options(opt, 'm')
    with pytest.raises(CheckpointError):
        network.build(spec)
    assert not marker.exists()
    opt['path']['trust_checkpoint'] = True
    network.build(network.spec_from_options(opt, 'm'))
    assert marker.exists()


def test_pickle_module_is_not_what_loads_plain_checkpoints(tmp_path, monkeypatch):
    """A plain tensor checkpoint never reaches full unpickling (no fallback with a warning)."""
    path = tmp_path / 'plain.pth'
    torch.save({'params': GIMSANet(num_feat=4).state_dict()}, path)
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    load_checkpoint_file(str(path))
    assert calls == [True]


def test_training_writes_safetensors_checkpoints_and_resumes_from_them(tmp_path, fmt='safetensors'):
    """safetensors only, the harder case: the resume finds no .pth at all (``both`` writes the two
    files through the same code)."""
    import glob
    from conftest import REPO_ROOT, run_basicsr_warm as run_basicsr
    from tiny_data import write_folder
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    opt = f'{REPO_ROOT}/tests/options/train_GIMSANet_tiny.yml'
    args = ['train', '-opt', opt, '--auto_resume', '--force_yml', 'name=st', 'val:val_freq=1000',
            f'logger:save_checkpoint_format={fmt}']
    first = run_basicsr(args + ['train:total_iter=3'], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    models = tmp_path / 'experiments' / 'st' / 'models'
    names = sorted(os.listdir(models))
    assert 'net_g_3.safetensors' in names and ('net_g_3.pth' in names) == (fmt == 'both')
    groups = load_checkpoint_file(str(models / 'net_g_3.safetensors'))
    assert set(groups) == {'params', 'params_ema'}  # the tiny option file keeps an EMA
    second = run_basicsr(args + ['train:total_iter=6'], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'Resuming training from epoch' in second.stdout + second.stderr
    assert glob.glob(str(models / 'net_g_6.safetensors'))
    bad = run_basicsr(['train', '-opt', opt, '--force_yml', 'name=st2', 'logger:save_checkpoint_format=onnx'],
                      tmp_path)
    assert bad.returncode == 2 and "logger.save_checkpoint_format: unknown value 'onnx'" in bad.stderr
