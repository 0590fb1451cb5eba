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


def test_jpeg_quality_patch():
    from basicsr.data import degradations
    original = compat.original('jpeg_quality')
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    try:
        original(img, 80.0)
        needed = False
    except Exception:  # OpenCV 5 rejects a float JPEG quality
        needed = True
    if not needed:
        pytest.skip('this OpenCV accepts float JPEG quality')
    out = degradations.add_jpg_compression(img, 80.0)
    assert out.shape == img.shape and out.dtype == np.float32


def test_local_rank_dash_accepted():
    from gimsanet_arch.options import normalize_local_rank_argv
    assert normalize_local_rank_argv(['-opt', 'x', '--local-rank=1']) == ['-opt', 'x', '--local_rank=1']
    assert normalize_local_rank_argv(['--local-rank', '2']) == ['--local_rank', '2']
    original = compat.original('parse_options')
    argv = sys.argv
    sys.argv = ['prog', '-opt', 'missing.yml', '--local-rank=0']
    try:
        with pytest.raises(SystemExit):  # argparse rejects --local-rank in basicsr 1.4.2
            original('.', True)
    finally:
        sys.argv = argv


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


def test_dist_patch_needed_on_cpu():
    if torch.cuda.is_available():
        pytest.skip('CUDA machine')
    env = dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1', MASTER_PORT='29555')
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with pytest.raises((ZeroDivisionError, RuntimeError, AssertionError)):
            compat.original('init_dist')('pytorch')  # NCCL + rank % device_count() == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_atomic_save_keeps_previous_file(tmp_path, monkeypatch):
    import basicsr.models.base_model as base_model
    path = tmp_path / 'net.pth'
    base_model.torch.save({'a': torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError('boom during save')

    with pytest.raises(RuntimeError, match='boom'):
        base_model.torch.save({'a': torch.zeros(2), 'b': Unpicklable()}, path)
    assert torch.equal(torch.load(path)['a'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['net.pth']  # no temp file left behind


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


def test_model_to_device_patch_needed_for_cpu_ddp():
    if torch.cuda.is_available():
        pytest.skip('CUDA machine')
    import socket
    import torch.distributed as dist
    from basicsr.models.base_model import BaseModel
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        model = BaseModel({'num_gpu': 0, 'is_train': True, 'dist': True})
        with pytest.raises((RuntimeError, AssertionError, ValueError)):
            compat.original('model_to_device')(model, torch.nn.Conv2d(1, 1, 1))  # CUDA device_ids
        wrapped = model.model_to_device(torch.nn.Conv2d(1, 1, 1))
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert wrapped.broadcast_buffers is False
    finally:
        dist.destroy_process_group()


def test_every_patch_row_is_installed_once_and_reaches_its_original():
    """One idempotence rule and one way to the original, for every row of the table."""
    for patch in compat.PATCHES:
        owner, attr = compat._resolve(patch.target)
        current = getattr(owner, attr)
        if compat.APPLIED[patch.name]:
            assert current._gimsanet_patch == patch.name
            assert compat.original(patch.name) is current.__wrapped__
            assert compat.install(patch) is False  # applying again changes nothing
            assert getattr(owner, attr) is current
        else:
            assert compat.original(patch.name) is current
        test_file, _, test_name = patch.test.partition('::')
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), test_file)) as f:
            assert f'def {test_name}(' in f.read(), f'{patch.name}: its test {patch.test} does not exist'


def test_a_patch_whose_defect_is_fixed_is_skipped(monkeypatch):
    """A basicsr that fixed a hole makes the row a no-op (its defect check says no)."""
    import types
    from basicsr.models.base_model import BaseModel
    row = next(p for p in compat.PATCHES if p.name == 'model_to_device')

    class FixedBaseModel(BaseModel):
        def model_to_device(self, net):  # a fixed basicsr: no CUDA device_ids on CPU
            return net.to(self.device)

    fixed_basicsr = types.ModuleType('fixed_basicsr')
    fixed_basicsr.BaseModel = FixedBaseModel
    monkeypatch.setitem(sys.modules, 'fixed_basicsr', fixed_basicsr)
    fixed = compat.Patch(row.name, 'fixed_basicsr:BaseModel.model_to_device', row.make, row.why, row.versions,
                         row.test, row.needed)
    assert compat.install(fixed) is False
    assert not hasattr(FixedBaseModel.model_to_device, '_gimsanet_patch')
    assert compat.install(compat.Patch(row.name, 'fixed_basicsr:BaseModel.model_to_device', row.make, row.why,
                                       row.versions, row.test)) is True  # without the check it would patch


def test_readme_lists_every_patch_row():
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'README.md')).read()
    section = readme[readme.index('## Compatibility with basicsr'):readme.index('## How the package is organised')]
    for patch in compat.PATCHES:
        assert f'`{patch.name}`' in section, f'README does not list the compat row {patch.name}'
