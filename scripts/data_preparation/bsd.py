#!/usr/bin/env python
"""Synthetic-AWGN data (BSD400, CBSD432, BSD68, CBSD68, optional DFWB) -> BasicSR LMDBs.

Only clean images are stored; the AWGN dataset adds the noise on the fly.

Downloads (unpack so that the images lie directly in the folders below; file names are kept):

* BSD400 (400 gray 180x180 PNGs ``test_001.png`` ...): DnCNN's training set,
  https://github.com/cszn/DnCNN (``TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400``)
  -> ``datasets/raw/BSD400/``
* CBSD432 (432 colour JPGs, the BSDS500 train+val images except the CBSD68 ones):
  e.g. https://github.com/cszn/FFDNet or https://github.com/clausmichele/CBSD68-dataset's source,
  BSDS500 (https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html)
  ``images/train`` + ``images/val`` -> ``datasets/raw/CBSD432/``
* BSD68 (68 gray PNGs ``test001.png`` ...): https://github.com/cszn/DnCNN (``testsets/BSD68``)
  -> ``datasets/raw/BSD68/``
* CBSD68 (68 colour PNGs): https://github.com/clausmichele/CBSD68-dataset (``CBSD68/original_png``)
  or Restormer's ``Denoising/download_data.py`` -> ``datasets/raw/CBSD68/``
* DFWB (Restormer's larger training set): DIV2K train HR (https://data.vision.ee.ethz.ch/cvl/DIV2K/)
  -> ``datasets/raw/DIV2K_train_HR/``, Flickr2K (https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar)
  -> ``datasets/raw/Flickr2K_HR/``, WED (https://ece.uwaterloo.ca/~k29ma/exploration/,
  ``pristine_images``) -> ``datasets/raw/WED/``, and BSD400 as above.

Commands (from the repository root)::

    python scripts/data_preparation/bsd.py --verify
        # BSD400, CBSD432 (whole images) and BSD68, CBSD68 (LMDB), the default --sets
    python scripts/data_preparation/bsd.py --sets BSD400 CBSD432 --crop-size 128 --step 64 --verify
        # overlapping sub-images instead of whole images (train sets only)
    python scripts/data_preparation/bsd.py --sets BSD68 CBSD68 --format both
        # test sets as LMDB and as PNG folders
    python scripts/data_preparation/bsd.py --sets DFWB --workers 16 --verify
        # DIV2K + Flickr2K + WED + BSD400 in one LMDB, 512x512 sub-images, step 384

Outputs (default ``--output-root datasets``):

* ``datasets/BSD400/train.lmdb`` (gray, whole images, keys ``test_001`` ...) or
  ``datasets/BSD400/train_crops.lmdb`` with ``--crop-size`` (keys ``test_001_s001`` ...)
* ``datasets/CBSD432/train.lmdb`` / ``train_crops.lmdb`` (colour)
* ``datasets/BSD68/test.lmdb`` and/or folder ``datasets/BSD68/test/`` (gray PNGs)
* ``datasets/CBSD68/test.lmdb`` and/or folder ``datasets/CBSD68/test/`` (colour PNGs)
* ``datasets/DFWB/train_crops.lmdb`` (colour; keys ``<folder>_<stem>_s001``, e.g.
  ``DIV2K_train_HR_0001_s001``; images smaller than the crop are stored whole), or
  ``datasets/DFWB/train.lmdb`` with ``--crop-size 0``

Gray sets are stored single-channel (meta_info ``(h,w,1)``), colour sets as 3-channel BGR PNGs.
Re-running skips complete outputs; an interrupted run (``*.lmdb.partial``) is rebuilt.
"""
import argparse
import os
import sys

from gimsanet_prep.build import build_lmdb
from gimsanet_prep.cli import EPILOG, add_common_arguments, build_kwargs, cli_main, verify_outputs
from gimsanet_prep.errors import InputError
from gimsanet_prep.images import IMAGE_EXTENSIONS
from gimsanet_prep.inputs import list_input_images, sanitize_key
from gimsanet_prep.jobs import single_image_jobs
from gimsanet_prep.lmdb_writer import folder_status, lmdb_status

# name: (default raw folder(s), read mode, split, default crop size)
SETS = {
    'BSD400': (['BSD400'], 'gray', 'train', 0),
    'CBSD432': (['CBSD432'], 'color', 'train', 0),
    'BSD68': (['BSD68'], 'gray', 'test', 0),
    'CBSD68': (['CBSD68'], 'color', 'test', 0),
    'DFWB': (['DIV2K_train_HR', 'Flickr2K_HR', 'WED', 'BSD400'], 'color', 'train', 512),
}
DEFAULT_SETS = ['BSD400', 'CBSD432', 'BSD68', 'CBSD68']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument('--sets', nargs='+', choices=list(SETS), default=DEFAULT_SETS,
                        help=f'datasets to prepare (default: {" ".join(DEFAULT_SETS)})')
    parser.add_argument('--input-root', default='datasets/raw', help='folder holding the raw dataset folders')
    parser.add_argument('--input', nargs='+', metavar='DIR',
                        help='raw image folder(s) of the single set in --sets (DFWB: several)')
    parser.add_argument('--output-root', default='datasets', help='outputs go to <output-root>/<set>/')
    parser.add_argument('--output', help='output .lmdb path of the single set in --sets')
    parser.add_argument('--crop-size', type=int, default=None,
                        help='train sets: store overlapping sub-images of this size (0: whole images; '
                        'default 0, DFWB 512)')
    parser.add_argument('--step', type=int, default=None, help='sub-image stride (default: 3/4 of --crop-size)')
    parser.add_argument('--thresh-size', type=int, default=0,
                        help="BasicSR's extract_subimages thresh_size: add a last crop at the border when "
                        'more than this many pixels would be left over')
    parser.add_argument('--format', choices=['lmdb', 'png', 'both'], default='lmdb',
                        help='test sets (BSD68, CBSD68): LMDB, PNG folder or both')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if (args.input or args.output) and len(args.sets) != 1:
        parser.error('--input / --output need exactly one set in --sets')
    if args.input and len(args.input) > 1 and args.sets != ['DFWB']:
        parser.error('several --input folders are for DFWB only')
    if args.crop_size is not None and args.crop_size < 0 or args.step is not None and args.step <= 0:
        parser.error('--crop-size must be >= 0 and --step > 0')
    return args


def plan(name, args):
    folders, mode, split, default_crop = SETS[name]
    folders = args.input or [os.path.join(args.input_root, f) for f in folders]
    crop_size = default_crop if args.crop_size is None else args.crop_size
    crop = None
    if split == 'train' and crop_size > 0:
        crop = (crop_size, args.step or max(1, crop_size * 3 // 4), args.thresh_size)
    if args.output:
        lmdb_path = args.output
    else:
        base = 'test' if split == 'test' else ('train_crops' if crop else 'train')
        lmdb_path = os.path.join(args.output_root, name, base + '.lmdb')
    folder = None
    if split == 'test':
        if args.format in ('png', 'both'):
            folder = lmdb_path[:-len('.lmdb')] if lmdb_path.endswith('.lmdb') else lmdb_path + '_png'
        if args.format == 'png':
            lmdb_path = None
    return dict(name=name, folders=folders, mode=mode, crop=crop, lmdb=lmdb_path, folder=folder)


def collect_items(folders):
    """[(key, path)] of all images; keys carry the folder name when there are several folders."""
    items, problems = [], []
    for folder in folders:
        try:
            paths = list_input_images(folder)
        except InputError as exc:
            problems += exc.problems
            continue
        if not paths:
            problems.append(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)})')
        prefix = sanitize_key(os.path.basename(os.path.normpath(folder))) + '_' if len(folders) > 1 else ''
        items += [(prefix + sanitize_key(os.path.splitext(os.path.basename(p))[0]), p) for p in paths]
    return items, problems


def main(argv=None):
    args = parse_args(argv)
    plans = [plan(name, args) for name in args.sets]
    # every missing / empty input folder of every requested set, in one error
    problems, all_items = [], {}
    for p in plans:
        done = [lmdb_status(p['lmdb']) == 'complete'] if p['lmdb'] else []
        done += [folder_status(p['folder']) == 'complete'] if p['folder'] else []
        if all(done) and not args.overwrite:  # a re-run of a complete build reads no input
            all_items[p['name']] = []
            continue
        items, set_problems = collect_items(p['folders'])
        problems += [f'{p["name"]}: {msg}' for msg in set_problems]
        all_items[p['name']] = items
    if problems:
        raise InputError(problems, header='Missing dataset inputs')
    built = []
    for p in plans:
        info = {'set': p['name'], 'mode': p['mode'], 'crop': list(p['crop']) if p['crop'] else None}
        build_lmdb(p['lmdb'], single_image_jobs(all_items[p['name']], p['mode'], p['crop']),
                   folder=p['folder'], desc=p['name'], info=info, **build_kwargs(args))
        if p['lmdb']:
            built.append(p['lmdb'])
    verify_outputs(built, args)


if __name__ == '__main__':
    sys.exit(cli_main(main))
