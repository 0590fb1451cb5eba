"""Tiny generated data sets for running option files on CPU (clean folders, gray/colour LMDBs,
paired SIDD-like LMDBs). Import with ``sys.path`` holding ``tests/`` (pytest does this for files
directly under ``tests/``)."""
import os
import os.path as osp

import cv2
import numpy as np


def smooth_image(rng, h, w, channels=3):
    """A smooth random uint8 image (blurred noise + gradient), so denoising has something to do."""
    base = rng.random((h // 4 + 2, w // 4 + 2, channels)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    img = img.reshape(h, w, channels)
    img += np.linspace(0, 0.3, w, dtype=np.float32)[None, :, None]
    img = np.clip(img / img.max(), 0, 1)
    return (img * 255).round().astype(np.uint8)


def write_folder(folder, n, size, channels=3, seed=0, prefix='img'):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = size if isinstance(size, (tuple, list)) else (size, size)
        img = smooth_image(rng, h, w, channels)
        path = osp.join(folder, f'{prefix}{i:03d}.png')
        cv2.imwrite(path, img if channels == 3 else img[:, :, 0])
        paths.append(path)
    return paths


def write_lmdb_from_folder(folder, lmdb_path, mode='unchanged'):
    from gimsanet_prep.build import build_lmdb
    from gimsanet_prep.images import list_images
    from gimsanet_prep.jobs import single_image_jobs
    items = [(osp.splitext(osp.basename(p))[0], p) for p in list_images(folder, recursive=False)]
    build_lmdb(lmdb_path, single_image_jobs(items, mode), progress=False, log=lambda *_: None)
    return lmdb_path


def write_paired(root, n, size, seed=0, sigma=20, lmdb=True):
    """``root/{input,gt}`` PNG folders (same names) and, with ``lmdb``, ``root/input_crops.lmdb`` and
    ``root/gt_crops.lmdb`` (the SIDD layout)."""
    rng = np.random.default_rng(seed)
    gt_dir, lq_dir = osp.join(root, 'gt'), osp.join(root, 'input')
    os.makedirs(gt_dir, exist_ok=True)
    os.makedirs(lq_dir, exist_ok=True)
    items = []
    for i in range(n):
        gt = smooth_image(rng, size, size, 3)
        lq = np.clip(gt + rng.normal(0, sigma, gt.shape), 0, 255).round().astype(np.uint8)
        name = f'{i:04d}.png'
        cv2.imwrite(osp.join(gt_dir, name), gt)
        cv2.imwrite(osp.join(lq_dir, name), lq)
        items.append((f'{i:04d}', osp.join(lq_dir, name), osp.join(gt_dir, name)))
    if lmdb:
        from gimsanet_prep.build import build_paired_lmdbs
        from gimsanet_prep.jobs import paired_image_jobs
        build_paired_lmdbs(osp.join(root, 'input_crops.lmdb'), osp.join(root, 'gt_crops.lmdb'),
                           paired_image_jobs(items, 'unchanged'), progress=False, log=lambda *_: None)
    return root


def make_all(root, size=40, n_train=4, n_val=1, val_size=None):
    """Everything the option files under ``options/`` need, under ``root``; returns a dict of paths."""
    val_size = val_size or size
    d = {}
    d['color_train'] = osp.join(root, 'color_train')
    d['gray_train'] = osp.join(root, 'gray_train')
    d['color_val'] = osp.join(root, 'color_val')
    d['gray_val'] = osp.join(root, 'gray_val')
    write_folder(d['color_train'], n_train, size, 3, seed=1)
    write_folder(d['gray_train'], n_train, size, 1, seed=2)
    write_folder(d['color_val'], n_val, (val_size, val_size + 3), 3, seed=3)
    write_folder(d['gray_val'], n_val, (val_size, val_size + 3), 1, seed=4)
    d['color_train_lmdb'] = write_lmdb_from_folder(d['color_train'], osp.join(root, 'color_train.lmdb'))
    d['gray_train_lmdb'] = write_lmdb_from_folder(d['gray_train'], osp.join(root, 'gray_train.lmdb'))
    d['color_val_lmdb'] = write_lmdb_from_folder(d['color_val'], osp.join(root, 'color_val.lmdb'))
    d['gray_val_lmdb'] = write_lmdb_from_folder(d['gray_val'], osp.join(root, 'gray_val.lmdb'))
    d['sidd_train'] = write_paired(osp.join(root, 'sidd_train'), n_train, size, seed=5)
    d['sidd_val'] = write_paired(osp.join(root, 'sidd_val'), n_val, val_size, seed=6)
    return d
