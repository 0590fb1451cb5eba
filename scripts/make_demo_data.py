#!/usr/bin/env python
"""Build the embedded demo dataset from the photos that ship inside scikit-image.

Only ``skimage.data``'s own bundled photos are used (no downloads; images from other packages are
kept apart for evaluation). Writes, under ``--out`` (default ``datasets/demo``):

    train/        colour training photos as PNG (folder backend)
    train.lmdb/   the same photos as a BasicSR LMDB (lmdb backend, what the demo trains on)
    val/          held-out photo(s) for validation (chelsea, the cat)
    train_gray/, val_gray/   gray versions, for the gray demo / tests

Usage: python scripts/make_demo_data.py [--out datasets/demo] [--max-side 512]
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np

from gimsanet_prep.build import build_lmdb
from gimsanet_prep.images import list_images
from gimsanet_prep.jobs import single_image_jobs

TRAIN_PHOTOS = ('astronaut', 'coffee', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'stereo_motorcycle',
                'retina')
VAL_PHOTOS = ('chelsea', )


def load_photo(name, max_side):
    from skimage import data
    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    scale = max_side / max(img.shape[:2])
    if scale < 1:  # keep the demo light: large photos are downscaled (area filter, no aliasing)
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def write_split(names, out_dir, gray_dir, max_side):
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(gray_dir, exist_ok=True)
    written = []
    for name in names:
        rgb = load_photo(name, max_side)
        bgr = rgb[:, :, ::-1]
        path = osp.join(out_dir, f'{name}.png')
        if not osp.exists(path):
            cv2.imwrite(path, bgr)
            cv2.imwrite(osp.join(gray_dir, f'{name}.png'), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='datasets/demo', help='output folder (default: datasets/demo)')
    parser.add_argument('--max-side', type=int, default=512, help='downscale photos larger than this')
    parser.add_argument('--no-lmdb', action='store_true', help='only write PNG folders')
    args = parser.parse_args(argv)

    train = write_split(TRAIN_PHOTOS, osp.join(args.out, 'train'), osp.join(args.out, 'train_gray'), args.max_side)
    val = write_split(VAL_PHOTOS, osp.join(args.out, 'val'), osp.join(args.out, 'val_gray'), args.max_side)
    if not args.no_lmdb:
        paths = list_images(osp.join(args.out, 'train'), recursive=False)
        jobs = single_image_jobs([(osp.splitext(osp.basename(p))[0], p) for p in paths])
        build_lmdb(osp.join(args.out, 'train.lmdb'), jobs)  # no-op when already complete
    print(f'demo data: {len(train)} train photos, {len(val)} val photo(s) under {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
