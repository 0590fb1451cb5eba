"""Official Restormer/NAFNet type names and keys (ImageCleanModel, ImageRestorationModel,
Dataset_GaussianDenoising, Dataset_PairedImage, NAFNet's PairedImageDataset keys): behaviour
checks, and option files with every official key trained through ``basicsr train``."""
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tests'))
import tiny_data  # noqa: E402

OFFICIAL_LIKE = osp.join(REPO, 'tests', 'options', 'official_like')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('official'))
    d = {'color_train': tiny_data.write_folder(osp.join(root, 'ct'), 2, 32, 3, seed=1) and osp.join(root, 'ct'),
         'color_val': tiny_data.write_folder(osp.join(root, 'cv'), 1, (25, 30), 3, seed=2) and osp.join(root, 'cv'),
         'sidd_train': tiny_data.write_paired(osp.join(root, 'st'), 2, 32, seed=3),
         'sidd_val': tiny_data.write_paired(osp.join(root, 'sv'), 1, 28, seed=4)}
    return d


def test_gaussian_val_noise_is_the_official_one(data):
    from gimsanet_arch.data.official_compat_dataset import Dataset_GaussianDenoising
    ds = Dataset_GaussianDenoising({'name': 'v', 'phase': 'val', 'dataroot_gt': data['color_val'], 'in_ch': 3,
                                    'sigma_test': 25, 'io_backend': {'type': 'disk'}, 'dataroot_lq': 'none'})
    item = ds[0]
    path = sorted(os.listdir(data['color_val']))[0]
    img = cv2.cvtColor(cv2.imread(osp.join(data['color_val'], path)).astype(np.float32) / 255., cv2.COLOR_BGR2RGB)
    lq = img.copy()
    np.random.seed(seed=0)
    lq += np.random.normal(0, 25 / 255.0, lq.shape)
    np.testing.assert_array_equal(item['lq'].numpy(), lq.transpose(2, 0, 1))
    np.testing.assert_array_equal(item['gt'].numpy(), img.transpose(2, 0, 1))


def test_gray_reads_with_imread_grayscale(data):
    from gimsanet_arch.data.official_compat_dataset import Dataset_GaussianDenoising
    ds = Dataset_GaussianDenoising({'name': 'v', 'phase': 'val', 'dataroot_gt': data['color_val'], 'in_ch': 1,
                                    'sigma_test': 15, 'io_backend': {'type': 'disk'}})
    path = osp.join(data['color_val'], sorted(os.listdir(data['color_val']))[0])
    ref = cv2.imread(path, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.
    np.testing.assert_array_equal(ds[0]['gt'].numpy()[0], ref)


def test_train_items_and_geometric_augs(data):
    from gimsanet_arch.data.official_compat_dataset import Dataset_GaussianDenoising, Dataset_PairedImage
    ds = Dataset_GaussianDenoising({'name': 't', 'phase': 'train', 'dataroot_gt': data['color_train'], 'in_ch': 3,
                                    'sigma_type': 'choice', 'sigma_range': [10, 20], 'gt_size': 40, 'scale': 1,
                                    'geometric_augs': True, 'io_backend': {'type': 'disk'}})
    item = ds[0]
    assert item['lq'].shape == item['gt'].shape == (3, 40, 40)  # 32 px images reflect-padded to 40
    assert float(item['sigma']) in (10., 20.)
    pd = Dataset_PairedImage({'name': 'p', 'phase': 'train', 'dataroot_gt': osp.join(data['sidd_train'], 'gt'),
                              'dataroot_lq': osp.join(data['sidd_train'], 'input'), 'gt_size': 16, 'scale': 1,
                              'use_flip': True, 'use_rot': True, 'io_backend': {'type': 'disk'}})
    assert pd[1]['lq'].shape == (3, 16, 16)


def test_grid_positions_cover_the_image_like_official():
    from gimsanet_arch.models.official_compat_model import ImageRestorationModel
    starts = ImageRestorationModel._grid_starts(28, 16)
    assert starts[0] == 0 and starts[-1] == 12


def _run(cli, yml, overrides, tmp_path):
    res = cli(['train', '-opt', yml, '--force_yml'] + overrides, cwd=str(tmp_path), timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return res.stdout + res.stderr


def test_restormer_like_option_file_trains(data, tmp_path, basicsr_cli):
    log = _run(basicsr_cli, osp.join(OFFICIAL_LIKE, 'restormer_like_awgn.yml'),
               [f'datasets:train:dataroot_gt={data["color_train"]}', f'datasets:val:dataroot_gt={data["color_val"]}'],
               tmp_path)
    assert 'Model [ImageCleanModel] is created' in log
    assert 'Progressive training: iter 2: patch 24, mini-batch 1' in log
    assert '# psnr:' in log
    assert osp.isfile(tmp_path / 'experiments' / 'restormer_like_awgn' / 'models' / 'net_g_latest.pth')


def test_nafnet_like_option_file_trains(data, tmp_path, basicsr_cli):
    st, sv = data['sidd_train'], data['sidd_val']
    log = _run(basicsr_cli, osp.join(OFFICIAL_LIKE, 'nafnet_like_sidd.yml'),
               [f'datasets:train:dataroot_gt={st}/gt_crops.lmdb', f'datasets:train:dataroot_lq={st}/input_crops.lmdb',
                f'datasets:val:dataroot_gt={sv}/gt_crops.lmdb', f'datasets:val:dataroot_lq={sv}/input_crops.lmdb'],
               tmp_path)
    assert 'Model [ImageRestorationModel] is created' in log
    assert 'use_grad_clip defaults to true' in log
    assert '# ssim:' in log and 'l_pix' in log
