"""Random argument combinations never end in a traceback and never change an input file:
200 for gimsanet-denoise (in-process, tiny weights, 8x8 images) and 200 option-file overrides
through the up-front checks of basicsr train."""
import hashlib
import os
import random

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet

VALUES = ['-1', '0', '1', '3', '16', '1e9', 'nan', 'inf', '-inf', 'abc', '', '1e-3', '[1, 2]', '{a: 1}', '~', 'true']


def _digest(folder):
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), 'rb') as f:
                out[os.path.join(root, name)] = hashlib.sha256(f.read()).hexdigest()
    return out


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('fuzz')
    torch.manual_seed(0)
    torch.save({'params': GIMSANet(num_feat=4).state_dict()}, root / 'tiny.pth')
    (root / 'photos').mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / 'photos' / 'a.png'), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    cv2.imwrite(str(root / 'photos' / 'b.png'), rng.integers(0, 256, (8, 8), dtype=np.uint8))
    (root / 'notes.txt').write_text('not an image or a checkpoint\n')
    return root


# a plausible value for each option most of the time, anything at all otherwise
PLAUSIBLE = {'--tile': ['8', '16', '4', '-8'], '--tile-overlap': ['0', '2', '8', '32'], '--sigma': ['0', '15', '50', '-5'],
             '--seed': ['0', '3'], '--threads': ['1', '2', '0'], '--ext': ['png', 'tif', 'jpg', 'xyz'],
             '--suffix': ['_d', ''], '--arch-args': ['{num_feat: 4}', '{num_feat:4}', '{num_fet: 4}', '[1]'],
             '--arch': ['GIMSANet', 'NAFNet', 'GIMSNet'], '--dtype': ['fp32', 'auto'], '--device': ['cpu', 'auto']}


def _pick(rng, good, bad):
    return rng.choice(good) if rng.random() < 0.7 else rng.choice(bad)


def _denoise_argv(rng, root):
    photos, out = str(root / 'photos'), str(root / 'out')
    argv = [_pick(rng, [photos, str(root / 'photos' / 'a.png')], [str(root / 'notes.txt'), str(root / 'missing*.png')])]
    argv += ['-o', _pick(rng, [out], [photos, str(root / 'photos' / 'a.png'), str(root / 'notes.txt' / 'x')])]
    argv += ['--weights', _pick(rng, [str(root / 'tiny.pth')], [str(root / 'notes.txt'), str(root / 'none.pth')])]
    for flag in rng.sample(sorted(PLAUSIBLE), rng.randint(0, 4)):
        argv += [flag, _pick(rng, PLAUSIBLE[flag], VALUES)]
    for switch in ('--overwrite', '--self-ensemble', '--keep-orientation'):
        if rng.random() < 0.2:
            argv.append(switch)
    return argv + ['--no-progress']


def test_denoise_fuzz(inputs):
    from gimsanet_arch.commands import denoise
    rng = random.Random(22)
    protected = {k: v for k, v in _digest(inputs).items() if f'{os.sep}out{os.sep}' not in k}
    for _ in range(200):
        argv = _denoise_argv(rng, inputs)
        overwrite = '--overwrite' in argv
        try:
            code = denoise.main(argv)
        except SystemExit as exit_:  # argparse: a usage line, status 2
            code = exit_.code
        except Exception as err:  # noqa: BLE001
            pytest.fail(f'{argv}: traceback {type(err).__name__}: {err}')
        assert code in (0, 1, 2), argv
        now = {k: v for k, v in _digest(inputs).items() if k in protected}
        if not overwrite:
            assert now == protected, argv
        protected = {k: v for k, v in _digest(inputs).items() if f'{os.sep}out{os.sep}' not in k}


def test_option_override_fuzz(tmp_path):
    from conftest import REPO_ROOT
    from gimsanet_arch.commands.option_checks import check_run, known_errors
    from gimsanet_arch.options import OptionError, apply_force_yml, load_yaml
    from tiny_data import write_folder
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 2, 32)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 24)
    opt_path = f'{REPO_ROOT}/tests/options/train_GIMSANet_tiny.yml'
    keys = ['train:total_iter', 'train:warmup_iter', 'train:optim_g:lr', 'train:ema_decay', 'train:cpu_budget_hours',
            'datasets:train:batch_size_per_gpu', 'datasets:train:num_worker_per_gpu', 'datasets:train:gt_size',
            'logger:print_freq', 'logger:save_checkpoint_freq', 'val:val_freq', 'manual_seed', 'num_gpu',
            'network_g:num_feat', 'datasets:val:sigma_test', 'train:scheduler:type', 'model_type', 'nosuch:key']
    rng = random.Random(7)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    before = _digest(tmp_path / 'datasets')
    try:
        for _ in range(200):
            entries = [f'{rng.choice(keys)}={rng.choice(VALUES)}' for _ in range(rng.randint(1, 3))]
            try:
                check_run(apply_force_yml(load_yaml(opt_path), entries), opt_path)
            except known_errors() + (OptionError, ):
                pass
            except Exception as err:  # noqa: BLE001
                pytest.fail(f'{entries}: traceback {type(err).__name__}: {err}')
    finally:
        os.chdir(cwd)
    assert _digest(tmp_path / 'datasets') == before
    assert not (tmp_path / 'experiments').exists()
