"""Each row of compat's tables is either needed on this stack (the unpatched code fails) or skipped,
and the table itself is well-formed."""
import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gimsanet_arch.compat as compat


def _python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=full_env, timeout=300)


def test_import_registers_plugin_classes():
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
    for registry, names in ((ARCH_REGISTRY, ('GIMSANet', 'Restormer', 'NAFNet', 'NAFNetLocal')),
                            (DATASET_REGISTRY, ('GaussianNoiseDataset', )),
                            (LOSS_REGISTRY, ('GradientLoss', 'PSNRLoss')),
                            (MODEL_REGISTRY, ('DenoiseModel', ))):
        for name in names:
            assert name in registry, f'{name} not registered'


def test_functional_tensor_stand_in_needed_or_skipped():
    if not compat.APPLIED['functional_tensor']:
        pytest.skip('this torchvision still ships transforms.functional_tensor')
    without = _python('import basicsr', GIMSANET_NO_COMPAT='1')
    assert without.returncode != 0 and 'functional_tensor' in without.stderr
    from torchvision.transforms.functional_tensor import rgb_to_grayscale
    img = torch.rand(3, 4, 4)
    assert torch.allclose(rgb_to_grayscale(img), 0.2989 * img[0:1] + 0.587 * img[1:2] + 0.114 * img[2:3], atol=1e-4)


def test_import_is_clean_under_warnings_as_errors():
    result = _python('import gimsanet_arch', PYTHONWARNINGS='error')
    assert result.returncode == 0, result.stderr[-2000:]


def test_distutils_stand_in_skipped_when_distutils_exists():
    import importlib.util
    if importlib.util.find_spec('distutils') is not None:
        assert compat.APPLIED['distutils'] is False
    # the stand-in itself compares versions like LooseVersion
    _, version = compat._loose_version_module()
    lv = version.LooseVersion
    assert lv('0.29.1') >= lv('0.9.0') and lv('1.10') > lv('1.9') and lv('2.0') == lv('2.0')


TINY_OPTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'options', 'train_GIMSANet_tiny.yml')


@pytest.mark.parametrize('is_train', [True, False])
def test_parse_options_takes_the_handed_on_options(tmp_path, is_train):
    """The plugin's parse_options completes the handed-on options exactly as BasicSR's completes
    the file; BasicSR's own rejects --local-rank (PyTorch 2 launchers) and reads the file again."""
    from gimsanet_arch.options import normalize_local_rank_argv, read_options
    from gimsanet_arch.training.run_options import handed_on, parse_options
    assert normalize_local_rank_argv(['-opt', 'x', '--local-rank=1']) == ['-opt', 'x', '--local_rank=1']
    assert normalize_local_rank_argv(['--local-rank', '2']) == ['--local_rank', '2']
    argv = ['-opt', TINY_OPTIONS, '--debug', '--force_yml', 'train:total_iter=9', 'name=parsed']
    argv_before = sys.argv
    try:
        sys.argv = ['basicsr'] + argv
        theirs, _ = compat.original('parse_options')(str(tmp_path), is_train)
        sys.argv = ['basicsr', '-opt', 'missing.yml', '--local-rank=0']
        with pytest.raises(SystemExit):  # argparse: unrecognized arguments
            compat.original('parse_options')(str(tmp_path), is_train)
    finally:
        sys.argv = argv_before
    opt, args = read_options(argv)
    with handed_on(opt, args):
        ours, our_args = parse_options(str(tmp_path), is_train)
    assert ours == theirs and our_args is args
    assert ours['name'] == 'debug_parsed' and ours['train']['total_iter'] == 9
    assert 'dist' not in opt  # the handed-on dict itself is left as the checks saw it
    import basicsr.train
    assert basicsr.train.parse_options is basicsr.utils.options.parse_options  # the aliases follow


def test_resume_patch_needed_on_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('the original resume works where CUDA exists')
    state_dir = tmp_path / 'experiments' / 'run' / 'training_states'
    state_dir.mkdir(parents=True)
    torch.save({'iter': 3, 'epoch': 0, 'optimizers': [], 'schedulers': []}, state_dir / '3.state')
    opt = {'name': 'run', 'auto_resume': False, 'num_gpu': 0,
           'path': {'resume_state': str(state_dir / '3.state'), 'training_states': str(state_dir)}}
    with pytest.raises((RuntimeError, AssertionError)):
        compat.original('load_resume_state')(dict(opt, path=dict(opt['path'])))
    import basicsr.train
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 3


def test_other_basicsr_models_are_left_as_basicsr_wrote_them():
    """Model-level behaviour is DenoiseModel's: no BaseModel/SRModel method and no module attribute
    of base_model is replaced; DenoiseModel has its own."""
    import basicsr.models.base_model as base_model
    from basicsr.models.sr_model import SRModel
    from gimsanet_arch.models.denoise_model import DenoiseModel
    assert base_model.torch is torch
    for cls in (base_model.BaseModel, SRModel):
        patched = [name for name, value in vars(cls).items() if hasattr(value, '_gimsanet_patch')]
        assert patched == [], f'{cls.__name__} methods patched: {patched}'
    for name in ('model_to_device', 'save_network', 'load_network', 'save_training_state', 'resume_training',
                 'update_learning_rate', 'validation'):
        assert getattr(DenoiseModel, name) is not getattr(base_model.BaseModel, name), name
    assert not any(p.owner in (base_model.BaseModel, SRModel, base_model) for p in compat.patches())


def _paired_folders(tmp_path):
    import cv2
    for sub in ('lq', 'gt'):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / 'a.png'), np.full((20, 20, 3), 128, np.uint8))
    return {'name': 'p', 'phase': 'train', 'dataroot_lq': str(tmp_path / 'lq'), 'dataroot_gt': str(tmp_path / 'gt'),
            'io_backend': {'type': 'disk'}, 'gt_size': 16, 'scale': 1, 'use_flip': True, 'use_rot': True}


def test_paired_dataset_accepts_nafnet_use_flip(tmp_path):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    opt = _paired_folders(tmp_path)
    unpatched = PairedImageDataset.__new__(PairedImageDataset)
    compat.original('paired_use_flip')(unpatched, copy.deepcopy(opt))  # basicsr pops io_backend.type
    with pytest.raises(KeyError, match='use_hflip'):
        unpatched[0]  # basicsr 1.4.2 reads opt['use_hflip'] only
    assert PairedImageDataset(copy.deepcopy(opt))[0]['lq'].shape == (3, 16, 16)


def test_ddp_wrapping_on_cpu_needs_the_plugins_model_to_device():
    if torch.cuda.is_available():
        pytest.skip('CUDA machine')
    import socket
    import torch.distributed as dist
    from basicsr.models.base_model import BaseModel
    from gimsanet_arch.training.dist import wrap_for_training
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        model = BaseModel({'num_gpu': 0, 'is_train': True, 'dist': True})
        with pytest.raises((RuntimeError, AssertionError, ValueError)):
            model.model_to_device(torch.nn.Conv2d(1, 1, 1))  # BasicSR's: CUDA device_ids
        wrapped = wrap_for_training(torch.nn.Conv2d(1, 1, 1), model.opt, model.device)
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert wrapped.broadcast_buffers is False
    finally:
        dist.destroy_process_group()


# the rows that install with basicsr 1.4.2 on this project's stack (torch 2.14, torchvision 0.29)
PINNED_ROWS_1_4_2 = {'functional_tensor', 'parse_options', 'load_resume_state', 'create_loaders', 'sampler_iter',
                     'sampler_set_epoch', 'worker_seeds', 'lmdb_shared_envs', 'paired_use_flip'}


def test_the_rows_that_install_on_basicsr_1_4_2_are_pinned():
    import basicsr
    if basicsr.__version__ != '1.4.2' or 'basicsr-fixed' in _installed_distributions():
        pytest.skip('not the PyPI basicsr 1.4.2')
    expected = set(PINNED_ROWS_1_4_2)
    if sys.version_info >= (3, 12):
        expected.add('distutils')
    assert {name for name, installed in compat.APPLIED.items() if installed} == expected
    assert set(compat.APPLIED) == {s.name for s in compat.STAND_INS} | {p.name for p in compat.patches()}


def _installed_distributions():
    from importlib.metadata import distributions
    return {d.metadata['Name'].lower() for d in distributions()}


def test_every_patch_row_is_installed_once_and_reaches_its_original():
    """One idempotence rule and one way to the original, for every row of the table."""
    for patch in compat.patches():
        current = getattr(patch.owner, patch.attr)
        if compat.APPLIED[patch.name]:
            assert current._gimsanet_patch == patch.name
            assert compat.original(patch.name) is current.__wrapped__
            assert compat.install(patch) is False  # applying again changes nothing
            assert getattr(patch.owner, patch.attr) is current
        else:
            assert compat.original(patch.name) is current
        test_file, _, test_name = patch.test.partition('::')
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), test_file)) as f:
            assert f'def {test_name}(' in f.read(), f'{patch.name}: its test {patch.test} does not exist'


def test_a_patch_whose_defect_is_fixed_is_skipped():
    """A basicsr that fixed a hole makes the row a no-op (its defect check says no)."""
    import dataclasses
    import types
    row = next(p for p in compat.patches() if p.name == 'load_resume_state')
    fixed_train = types.ModuleType('fixed_basicsr_train')

    def load_resume_state(opt):  # a fixed basicsr: no torch.cuda call on CPU
        return None

    fixed_train.load_resume_state = load_resume_state
    assert compat.install(dataclasses.replace(row, owner=fixed_train, aliases=())) is False
    assert fixed_train.load_resume_state is load_resume_state
    assert compat.install(dataclasses.replace(row, owner=fixed_train, aliases=(), needed=compat._always)) is True
    assert fixed_train.load_resume_state.__wrapped__ is load_resume_state  # without the check it would patch


def test_the_compat_doc_lists_every_row():
    doc = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'compat.md')).read()
    for row in (*compat.STAND_INS, *compat.patches()):
        assert f'`{row.name}`' in doc, f'docs/compat.md does not list the compat row {row.name}'
