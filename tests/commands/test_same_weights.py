"""One model-loading path: given the same option file and checkpoint, ``gimsanet-denoise -opt``, the
comparison (``--opt``), ``gimsanet-benchmark --opt`` and ``gimsanet-export -opt`` load the same
weights, chosen by one rule (:func:`gimsanet_arch.inference.network.option_param_key`)."""
import json

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.commands import benchmark, compare, denoise
from gimsanet_arch.export import cli as export
from gimsanet_arch.inference import network
from gimsanet_arch.training.checkpoint import load_checkpoint_file

NETWORK = {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 4}


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.mark.parametrize('path_opt, key', [
    ({}, 'params'),  # BasicSR's default: what `basicsr test` loads with the same file
    ({'param_key_g': 'params_ema'}, 'params_ema'),  # BasicSR's key
    ({'param_key': 'params_ema'}, 'params_ema'),  # the official Restormer/NAFNet spelling
    ({'param_key_g': 'params', 'param_key': 'params_ema'}, 'params'),  # BasicSR's wins, as in the official models
    ({'param_key_g': None, 'param_key': 'params_ema'}, 'params_ema'),  # unset is not a key
])
def test_the_option_file_rule(path_opt, key):
    assert network.option_param_key(path_opt) == key
    opt = {'network_g': NETWORK, 'path': dict(path_opt, pretrain_network_g='x.pth')}
    assert network.spec_from_options(opt, 'm').param_key == key


def weights(seed):
    torch.manual_seed(seed)
    return GIMSANet(in_channels=3, num_feat=4).state_dict()


@pytest.fixture
def loaded(monkeypatch):
    """Every state_dict a command builds through ``network.build``, in order."""
    seen, real_build = [], network.build

    def build(spec, device='cpu'):
        net, multiple = real_build(spec, device)
        seen.append({k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
        return net, multiple

    monkeypatch.setattr(network, 'build', build)
    return seen


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('path_opt, key', [({}, 'params'), ({'param_key': 'params_ema'}, 'params_ema')])
def test_the_four_commands_load_the_same_weights(tmp_path, loaded, path_opt, key):
    groups = {'params': weights(0), 'params_ema': weights(1)}
    checkpoint = tmp_path / 'net_g_10.pth'
    torch.save(groups, checkpoint)
    opt_file = tmp_path / 'test_tiny.yml'
    opt_file.write_text(json.dumps({'name': 'tiny', 'network_g': NETWORK,  # JSON is YAML
                                    'path': dict(path_opt, pretrain_network_g=str(checkpoint))}))
    data = tmp_path / 'clean'
    data.mkdir()
    cv2.imwrite(str(data / 'a.png'), np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    out = tmp_path / 'out'

    runs = {
        'denoise': lambda: denoise.main([str(data / 'a.png'), '-o', str(out / 'denoised'), '-opt', str(opt_file),
                                         '--dtype', 'fp32', '--device', 'cpu', '--no-progress']),
        'compare': lambda: compare.main(['--opt', str(opt_file), '--data', str(data), '--sigmas', '25', '--dtype', 'fp32',
                                         '--out', str(out / 'compare'), '--mac-size', '16', '--time-size', '16',
                                         '--time-runs', '1', '--crop', '8', '--tile', '16', '--no-progress']),
        'benchmark': lambda: benchmark.main(['--opt', str(opt_file), '--sizes', '16', '--runs', '1', '--warmup', '1',
                                             '--dtypes', 'fp32', '--channels-last', 'off', '--mac-size', '16',
                                             '--device', 'cpu', '--out', str(out / 'benchmark'), '--no-progress']),
        'export': lambda: export.main(['-opt', str(opt_file), '--formats', 'safetensors', '--out-dir',
                                       str(out / 'exported')]),
    }
    for command, run in runs.items():
        loaded.clear()
        assert run() == 0, command
        assert loaded, f'{command} built no network through inference/network.py'
        for state in loaded:
            assert same(state, groups[key]), f'{command} did not load {key}'
    exported = load_checkpoint_file(str(out / 'exported' / 'net_g_10.safetensors'))['params']
    assert same(exported, groups[key])


def test_denoise_weights_override_the_option_files_checkpoint(tmp_path, loaded):
    """``-opt`` gives the network, ``--weights`` the checkpoint (another iteration of the same run),
    as in ``gimsanet-export``; the option file's key still chooses the group."""
    named, given = tmp_path / 'net_g_10.pth', tmp_path / 'net_g_20.pth'
    torch.save({'params': weights(0)}, named)
    torch.save({'params': weights(2)}, given)
    opt_file = tmp_path / 'test_tiny.yml'
    opt_file.write_text(json.dumps({'name': 'tiny', 'network_g': NETWORK, 'path': {'pretrain_network_g': str(named)}}))
    cv2.imwrite(str(tmp_path / 'a.png'), np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    args = [str(tmp_path / 'a.png'), '-opt', str(opt_file), '--dtype', 'fp32', '--device', 'cpu', '--no-progress']
    assert denoise.main(args + ['-o', str(tmp_path / 'o1'), '--weights', str(given)]) == 0
    assert same(loaded[-1], weights(2))
    assert denoise.main(args + ['-o', str(tmp_path / 'o2')]) == 0
    assert same(loaded[-1], weights(0))
