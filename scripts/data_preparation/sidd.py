#!/usr/bin/env python
"""SIDD (real camera noise, sRGB) -> paired BasicSR LMDBs for training and validation.

Downloads (https://abdokamel.github.io/sidd/, formerly https://www.eecs.yorku.ca/~kamel/sidd/):

* Train: "SIDD-Medium Dataset", sRGB images only (``SIDD_Medium_Srgb.zip``, ~12 GB), unpacked to
  ``datasets/raw/SIDD_Medium_Srgb/Data/<scene>/`` where each scene folder (e.g.
  ``0001_001_S6_00100_00060_3200_L``) holds ``0001_NOISY_SRGB_010.PNG``, ``0001_GT_SRGB_010.PNG``,
  ``0001_NOISY_SRGB_011.PNG``, ``0001_GT_SRGB_011.PNG``.
* Validation: "SIDD Validation Data and Ground Truth", sRGB blocks ``ValidationNoisyBlocksSrgb.mat``
  and ``ValidationGtBlocksSrgb.mat`` -> ``datasets/raw/SIDD/``. Variables
  ``ValidationNoisyBlocksSrgb`` / ``ValidationGtBlocksSrgb``, (40, 32, 256, 256, 3) uint8 RGB;
  MATLAB 5 files (scipy.io), v7.3/HDF5 copies are read with h5py.

Commands (from the repository root)::

    python scripts/data_preparation/sidd.py --workers 16 --verify        # train and val
    python scripts/data_preparation/sidd.py --splits val --png --verify   # val, also as PNGs

Outputs (default ``--output-root datasets/SIDD``), the layout of NAFNet's ``sidd.py``:

* ``datasets/SIDD/train/input_crops.lmdb`` and ``gt_crops.lmdb``: 512x512 crops, step 384,
  thresh_size 0 (``--crop-size``, ``--step``, ``--thresh-size``), identical keys
  ``0001_SRGB_010_s001`` ... (the file name without ``_NOISY`` / ``_GT``, then the crop index).
* ``datasets/SIDD/val/input_crops.lmdb`` and ``gt_crops.lmdb``: the 1280 256x256 blocks, keys
  ``0000`` ... ``1279`` (image * 32 + block); with ``--png`` also ``datasets/SIDD/val/input/`` and
  ``datasets/SIDD/val/gt/`` (``0000.png`` ...).

Use them with BasicSR's ``PairedImageDataset`` (``io_backend: {type: lmdb}``,
``dataroot_lq: .../input_crops.lmdb``, ``dataroot_gt: .../gt_crops.lmdb``). Re-running skips complete
outputs; an interrupted run (``*.lmdb.partial``) is rebuilt.
"""
import argparse
import os
import sys

import numpy as np

from gimsanet_prep.build import build_paired_lmdbs
from gimsanet_prep.cli import EPILOG, add_common_arguments, build_kwargs, cli_main, verify_outputs
from gimsanet_prep.errors import InputError
from gimsanet_prep.inputs import find_pairs, require_files
from gimsanet_prep.jobs import Job, paired_image_jobs
from gimsanet_prep.lmdb_writer import folder_status, lmdb_status
from gimsanet_prep.matfile import load_mat_array

VAL_NOISY_VAR = 'ValidationNoisyBlocksSrgb'
VAL_GT_VAR = 'ValidationGtBlocksSrgb'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument('--splits', nargs='+', choices=['train', 'val'], default=['train', 'val'])
    parser.add_argument('--train-input', default='datasets/raw/SIDD_Medium_Srgb/Data',
                        help='SIDD-Medium sRGB "Data" folder holding the scene folders')
    parser.add_argument('--val-noisy', default='datasets/raw/SIDD/ValidationNoisyBlocksSrgb.mat')
    parser.add_argument('--val-gt', default='datasets/raw/SIDD/ValidationGtBlocksSrgb.mat')
    parser.add_argument('--output-root', default='datasets/SIDD',
                        help='writes <root>/train/{input,gt}_crops.lmdb and <root>/val/{input,gt}_crops.lmdb')
    parser.add_argument('--crop-size', type=int, default=512, help='train crop size (NAFNet: 512)')
    parser.add_argument('--step', type=int, default=384, help='train crop stride (NAFNet: 384)')
    parser.add_argument('--thresh-size', type=int, default=0, help="BasicSR extract_subimages' thresh_size")
    parser.add_argument('--png', action='store_true',
                        help='also write the validation blocks as PNG folders val/input/ and val/gt/')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.crop_size <= 0 or args.step <= 0:
        parser.error('--crop-size and --step must be positive')
    return args


def train_pairs(data_folder):
    """[(key, noisy_path, gt_path)] over all scene folders; every problem in one InputError."""
    if not os.path.isdir(data_folder):
        raise InputError([f'{data_folder}: folder not found (expected SIDD_Medium_Srgb/Data)'])
    scenes = sorted(d for d in os.listdir(data_folder)
                    if not d.startswith('.') and os.path.isdir(os.path.join(data_folder, d)))
    if not scenes:
        raise InputError([f'{data_folder}: no scene folders'])
    pairs, problems = [], []
    for scene in scenes:
        try:
            pairs += find_pairs(os.path.join(data_folder, scene), '_NOISY', '_GT', pattern=r'(?i)\.png$')
        except InputError as exc:
            problems += exc.problems
    keys = [k for k, _, _ in pairs]
    problems += [f'key {k!r} occurs in several scene folders' for k in sorted({k for k in keys if keys.count(k) > 1})]
    if problems:
        raise InputError(problems, header=f'Invalid SIDD-Medium sRGB inputs in {data_folder}')
    return pairs


def load_val(noisy_path, gt_path):
    """Both validation arrays, checked: (N, B, H, W, 3) uint8 RGB of equal shapes."""
    require_files([noisy_path, gt_path])
    arrays, problems = {}, []
    for name, path, var in (('noisy', noisy_path, VAL_NOISY_VAR), ('gt', gt_path, VAL_GT_VAR)):
        try:
            arr = load_mat_array(path, var)
        except InputError as exc:
            problems += exc.problems
            continue
        if arr.ndim == 4:
            arr = arr[:, None]
        if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            problems.append(f'{path}: {var} should be (images, blocks, H, W, 3) uint8, got {arr.shape} {arr.dtype}')
            continue
        arrays[name] = arr
    if not problems and arrays['noisy'].shape != arrays['gt'].shape:
        problems.append(f'{noisy_path} is {arrays["noisy"].shape} but {gt_path} is {arrays["gt"].shape}')
    if problems:
        raise InputError(problems, header='Invalid SIDD validation inputs')
    return arrays['noisy'], arrays['gt']


def val_jobs(noisy, gt):
    n_blocks = noisy.shape[1]
    digits = max(4, len(str(noisy.shape[0] * n_blocks - 1)))

    def make(i):
        def load():  # RGB -> BGR, the channel order cv2.imencode / BasicSR's imfrombytes expect
            return [(f'{i * n_blocks + j:0{digits}d}',
                     {'lq': np.ascontiguousarray(noisy[i, j, ..., ::-1]), 'gt': np.ascontiguousarray(gt[i, j, ..., ::-1])})
                    for j in range(n_blocks)]
        return Job(f'validation image {i}', load)

    return [make(i) for i in range(noisy.shape[0])]


def main(argv=None):
    args = parse_args(argv)
    kwargs = build_kwargs(args)
    outputs = {s: (os.path.join(args.output_root, s, 'input_crops.lmdb'),
                   os.path.join(args.output_root, s, 'gt_crops.lmdb')) for s in args.splits}
    # gather every input problem of every requested split before writing anything
    problems, pairs, val = [], None, None
    # (inputs are only read for outputs that need building: a re-run of a complete build is a no-op)
    if 'train' in args.splits and (args.overwrite or any(lmdb_status(p) != 'complete' for p in outputs['train'])):
        try:
            pairs = train_pairs(args.train_input)
        except InputError as exc:
            problems += exc.problems
    val_folders = (os.path.join(args.output_root, 'val', 'input'), os.path.join(args.output_root, 'val', 'gt'))
    if 'val' in args.splits:
        needed = [lmdb_status(p) for p in outputs['val']] + (
            [folder_status(p) for p in val_folders] if args.png else [])
        if args.overwrite or any(s != 'complete' for s in needed):
            try:
                val = load_val(args.val_noisy, args.val_gt)
            except InputError as exc:
                problems += exc.problems
    if problems:
        raise InputError(problems, header='Invalid SIDD inputs')
    if 'train' in args.splits:
        crop = (args.crop_size, args.step, args.thresh_size)
        build_paired_lmdbs(*outputs['train'], paired_image_jobs(pairs or [], 'color', crop),
                           desc='SIDD train', info={'split': 'train', 'crop': list(crop)}, **kwargs)
    if 'val' in args.splits:
        jobs = val_jobs(*val) if val is not None else []
        build_paired_lmdbs(*outputs['val'], jobs, *(val_folders if args.png else (None, None)),
                           desc='SIDD val', info={'split': 'val'}, **kwargs)
    verify_outputs([p for s in args.splits for p in outputs[s]], args,
                   pairs=[outputs[s] for s in args.splits])


if __name__ == '__main__':
    sys.exit(cli_main(main))
