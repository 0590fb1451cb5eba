"""One LMDB environment per process and path for every reader (issue 14): BasicSR's own
``LmdbBackend`` (compat row ``lmdb_shared_envs``) and the plugin's ``LmdbReader`` share them, and
DataLoader workers forked from a process that has them open read fine."""
import copy
import os.path as osp

import cv2
import lmdb
import numpy as np
import pytest
import torch

import gimsanet_arch.compat as compat
from gimsanet_arch.data import lmdb_env


@pytest.fixture
def sidd_like(tmp_path):
    """``input_crops.lmdb`` / ``gt_crops.lmdb`` with 4 pairs of 24 px crops (the SIDD layout)."""
    from gimsanet_prep.build import build_paired_lmdbs
    from gimsanet_prep.jobs import paired_image_jobs
    rng = np.random.default_rng(0)
    items = []
    for i in range(4):
        gt = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        lq = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
        paths = [str(tmp_path / f'{kind}{i}.png') for kind in ('lq', 'gt')]
        cv2.imwrite(paths[0], lq)
        cv2.imwrite(paths[1], gt)
        items.append((f'{i:04d}', *paths))
    lq_db, gt_db = str(tmp_path / 'input_crops.lmdb'), str(tmp_path / 'gt_crops.lmdb')
    build_paired_lmdbs(lq_db, gt_db, paired_image_jobs(items, 'unchanged'), progress=False, log=lambda *_: None)
    yield lq_db, gt_db
    lmdb_env.close_all()


def _paired_opt(lq_db, gt_db, phase):
    opt = {'name': phase, 'phase': phase, 'dataroot_lq': lq_db, 'dataroot_gt': gt_db, 'scale': 1,
           'io_backend': {'type': 'lmdb'}}
    if phase == 'train':
        opt.update(gt_size=16, use_hflip=True, use_rot=True)
    return opt


def test_train_and_val_paired_datasets_on_one_lmdb(sidd_like, monkeypatch):
    """The user's failure: train and val of BasicSR's PairedImageDataset on the same LMDB."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.utils.file_client import LmdbBackend
    lq_db, gt_db = sidd_like

    # BasicSR as shipped: each dataset opens its own environments, the second one stops the run
    monkeypatch.setattr(LmdbBackend, '__init__', compat.original('lmdb_shared_envs'))
    train = PairedImageDataset(_paired_opt(lq_db, gt_db, 'train'))
    val = PairedImageDataset(_paired_opt(lq_db, gt_db, 'val'))
    assert train[0]['gt'].shape == (3, 16, 16)
    with pytest.raises(lmdb.Error, match='already open in this process'):
        val[0]
    for env in (train.file_client.client._client[key] for key in ('lq', 'gt')):
        env.close()
    monkeypatch.undo()

    # with the row: both read, from one environment per LMDB
    assert compat.APPLIED['lmdb_shared_envs']
    lmdb_env.close_all()
    train = PairedImageDataset(_paired_opt(lq_db, gt_db, 'train'))
    val_1 = PairedImageDataset(_paired_opt(lq_db, gt_db, 'val'))
    val_2 = PairedImageDataset(_paired_opt(lq_db, gt_db, 'val'))
    assert train[1]['gt'].shape == (3, 16, 16)
    first, second = val_1[2], val_2[2]
    assert first['gt'].shape == (3, 24, 24) and torch.equal(first['lq'], second['lq'])
    assert lmdb_env.open_count() == 2  # input_crops.lmdb and gt_crops.lmdb, once each


def test_basicsr_backend_and_plugin_reader_share_the_environment(sidd_like):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from gimsanet_arch.data.gaussian_noise_dataset import GaussianNoiseDataset
    lq_db, gt_db = sidd_like
    paired = PairedImageDataset(_paired_opt(lq_db, gt_db, 'val'))
    noisy = GaussianNoiseDataset({'name': 'v', 'phase': 'val', 'dataroot_gt': gt_db, 'io_backend': {'type': 'lmdb'},
                                  'in_ch': 3, 'sigma_test': 15})
    assert torch.equal(paired[3]['gt'], noisy[3]['gt'])  # the same clean crop, through both readers
    assert lmdb_env.open_count() == 2


def test_dataloader_workers_forked_while_the_lmdb_is_open(sidd_like):
    """py-lmdb refuses, in a forked child, a path the parent had open: environments are closed
    before every fork and reopened on the next read, in the parent and in each worker."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    lq_db, gt_db = sidd_like
    dataset = PairedImageDataset(_paired_opt(lq_db, gt_db, 'val'))
    before = dataset[0]['lq']
    assert lmdb_env.open_count() == 2
    loader = torch.utils.data.DataLoader(copy.copy(dataset), batch_size=2, num_workers=2,
                                         multiprocessing_context='fork')
    batches = list(loader)
    assert [b['lq'].shape[0] for b in batches] == [2, 2]
    assert torch.equal(batches[0]['lq'][0], before)
    assert torch.equal(dataset[0]['lq'], before)  # the parent reopened after the fork
    assert osp.isdir(lq_db)
