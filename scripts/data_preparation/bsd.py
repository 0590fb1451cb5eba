#!/usr/bin/env python
"""Synthetic-AWGN data (BSD400, CBSD432, BSD68, CBSD68, optional DFWB) -> BasicSR LMDBs.

Only clean images are stored; the AWGN dataset adds the noise on the fly.

Downloads (unpack so that the images lie directly in the folders below; file names are kept):

* BSD400 (400 gray 180x180 PNGs ``test_001.png`` ...): DnCNN's training set,
  https://github.com/cszn/DnCNN (``TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400``)
  -> ``datasets/raw/BSD400/``
* CBSD432 (432 colour JPGs): BSDS500's 500 images (train 200 + val 100 + test 200) minus the 68 of
  CBSD68, which all lie in BSDS500's ``val`` folder. Put the BSDS500 image folders as shipped
  (``BSR/BSDS500/data/images/{train,val,test}``) in ``datasets/raw/BSDS500/``; the script leaves out
  every image whose decoded pixels equal a CBSD68 image (so CBSD68 is needed too). A flat folder
  ``datasets/raw/CBSD432/`` of the 432 images is used instead when there is no ``BSDS500/``.
  https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html
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
from gimsanet_prep.testsets import known_test_digests, read_split, refuse_test_images, split_items, split_off_test_images

# name: (default raw folder(s), read mode, split, default crop size)
SETS = {
    'BSD400': (['BSD400'], 'gray', 'train', 0),
    'CBSD432': (['BSDS500'], 'color', 'train', 0),  # or a flat CBSD432/ folder (see raw_folders)
    'BSD68': (['BSD68'], 'gray', 'test', 0),
    'CBSD68': (['CBSD68'], 'color', 'test', 0),
    'DFWB': (['DIV2K_train_HR', 'Flickr2K_HR', 'WED', 'BSD400'], 'color', 'train', 512),
}
DEFAULT_SETS = ['BSD400', 'CBSD432', 'BSD68', 'CBSD68']
# the sizes of the standard sets; another count means a wrong or incomplete download
EXPECTED_COUNTS = {'BSD400': 400, 'CBSD432': 432, 'BSD68': 68, 'CBSD68': 68}
# the test sets every training-set build is checked against (decoded pixels), from --input-root
TEST_SETS = ('CBSD68', 'BSD68')
BSDS500_PARTS = ('train', 'val', 'test')


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
    parser.add_argument('--any-count', action='store_true',
                        help=f'build sets whose image count is not the standard one '
                        f'({", ".join(f"{k} {v}" for k, v in EXPECTED_COUNTS.items())}); no hold-out split then '
                        'unless every listed key is present')
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


def is_bsds500(folder):
    """Whether ``folder`` is BSDS500's image folder as shipped (``train/``, ``val/``, ``test/``)."""
    return all(os.path.isdir(os.path.join(folder, part)) for part in BSDS500_PARTS)


def raw_folders(name, args):
    """The input folder(s) of a set: ``--input``, else the default under ``--input-root``
    (CBSD432: ``BSDS500/``, or a flat ``CBSD432/`` when there is no ``BSDS500/``)."""
    if args.input:
        return args.input
    folders = [os.path.join(args.input_root, f) for f in SETS[name][0]]
    if name == 'CBSD432' and not os.path.isdir(folders[0]):
        flat = os.path.join(args.input_root, 'CBSD432')
        if os.path.isdir(flat):
            return [flat]
    return folders


def plan(name, args):
    _, mode, split, default_crop = SETS[name]
    folders = raw_folders(name, args)
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
    # the fixed hold-out of a standard training set: <set>/train_minus_val.lmdb + <set>/val.lmdb
    holdout = None
    if split == 'train' and crop is None and not args.output and read_split(name):
        holdout = {part: os.path.join(args.output_root, name, part + '.lmdb') for part in ('train_minus_val', 'val')}
    return dict(name=name, folders=folders, mode=mode, split=split, crop=crop, lmdb=lmdb_path, folder=folder,
                holdout=holdout)


def outputs_complete(p):
    done = [lmdb_status(p['lmdb']) == 'complete'] if p['lmdb'] else []
    done += [folder_status(p['folder']) == 'complete'] if p['folder'] else []
    done += [lmdb_status(path) == 'complete' for path in (p['holdout'] or {}).values()]
    return all(done)


def collect_items(folders):
    """[(key, path)] of all images; keys carry the folder name when there are several folders.
    A BSDS500 folder contributes the images of its train/val/test parts (keys: file stems)."""
    items, problems = [], []
    for folder in folders:
        parts = [os.path.join(folder, part) for part in BSDS500_PARTS] if is_bsds500(folder) else [folder]
        paths = []
        for part in parts:
            try:
                paths += list_input_images(part)
            except InputError as exc:
                problems += exc.problems
        if not paths and os.path.isdir(folder):
            problems.append(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)})')
        prefix = sanitize_key(os.path.basename(os.path.normpath(folder))) + '_' if len(folders) > 1 else ''
        items += [(prefix + sanitize_key(os.path.splitext(os.path.basename(p))[0]), p) for p in paths]
    return items, problems


class TestImages:
    """The decoded-pixel digests of the test sets under ``--input-root``, read once per mode."""

    def __init__(self, args):
        self.folders = {name: os.path.join(args.input_root, name) for name in TEST_SETS}
        self.workers = max(1, args.workers)
        self._by_mode = {}

    def digests(self, mode):
        if mode not in self._by_mode:
            self._by_mode[mode] = known_test_digests(self.folders, mode, self.workers)
        return self._by_mode[mode]


def keep_test_images_out(p, items, test_images, args):
    """The training items of plan ``p`` without test images: from a BSDS500 folder the CBSD68
    images are left out (that is how CBSD432 is defined); anywhere else a test image is refused."""
    known = test_images.digests(p['mode'])
    if any(is_bsds500(f) for f in p['folders']):
        if not os.path.isdir(test_images.folders['CBSD68']):
            raise InputError([f'{p["name"]}: BSDS500 minus CBSD68 needs the CBSD68 images to know which 68 to '
                              f'leave out; put them in {test_images.folders["CBSD68"]}'])
        items, dropped = split_off_test_images(items, known, max(1, args.workers), p['mode'])
        print(f'{p["name"]}: {len(items) + len(dropped)} BSDS500 images, {len(dropped)} left out (CBSD68 test '
              f'images), {len(items)} kept')
        return items
    refuse_test_images(p['name'], items, known, p['mode'], max(1, args.workers))
    return items


def check_count(p, items, args):
    expected = EXPECTED_COUNTS.get(p['name'])
    print(f'{p["name"]}: {len(items)} images' + (f' (standard: {expected})' if expected else ''))
    if expected and len(items) != expected and not args.any_count and not args.input:
        raise InputError([f'{p["name"]}: found {len(items)} images in {", ".join(p["folders"])}, the standard set '
                          f'has {expected}; check the download, or pass --any-count to build it anyway'],
                         header=f'{p["name"]} is not the standard set')


def holdout_jobs(p, items):
    """``{path: items}`` of the hold-out outputs, or ``{}`` when the listed keys are not all present."""
    if not p['holdout']:
        return {}
    parts = split_items(items, read_split(p['name']))
    if parts is None:
        print(f'{p["name"]}: no hold-out split (not every key of gimsanet_prep/splits/{p["name"]}_val.txt is present)')
        return {}
    return dict(zip(p['holdout'].values(), parts))


def main(argv=None):
    args = parse_args(argv)
    plans = [plan(name, args) for name in args.sets]
    # every missing / empty input folder of every requested set, in one error
    problems, all_items = [], {}
    for p in plans:
        if outputs_complete(p) and not args.overwrite:  # a re-run of a complete build reads no input
            all_items[p['name']] = None
            continue
        items, set_problems = collect_items(p['folders'])
        problems += [f'{p["name"]}: {msg}' for msg in set_problems]
        all_items[p['name']] = items
    if problems:
        raise InputError(problems, header='Missing dataset inputs')
    # every check before anything is written: test images, counts
    test_images = TestImages(args)
    for p in plans:
        items = all_items[p['name']]
        if items is None:
            continue
        if p['split'] == 'train':
            items = all_items[p['name']] = keep_test_images_out(p, items, test_images, args)
        check_count(p, items, args)
    built = []
    for p in plans:
        items = all_items[p['name']] or []
        info = {'set': p['name'], 'mode': p['mode'], 'crop': list(p['crop']) if p['crop'] else None}
        build_lmdb(p['lmdb'], single_image_jobs(items, p['mode'], p['crop']),
                   folder=p['folder'], desc=p['name'], info=info, **build_kwargs(args))
        built += [p['lmdb']] if p['lmdb'] else []
        for path, part_items in holdout_jobs(p, items).items() if items else ():
            part = os.path.basename(path)[:-len('.lmdb')]
            build_lmdb(path, single_image_jobs(part_items, p['mode']), desc=f'{p["name"]} {part}',
                       info=dict(info, part=part), **build_kwargs(args))
            built.append(path)
    verify_outputs(built, args)


if __name__ == '__main__':
    sys.exit(cli_main(main))
