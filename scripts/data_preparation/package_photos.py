#!/usr/bin/env python
"""Real photographs shipped in Debian packages (desktop wallpapers, a puzzle game, a login theme)
-> BasicSR LMDBs for AWGN training and validation.

The photos are the ones listed in ``scripts/data_preparation/package_photos.tsv`` (chosen by hand:
photographs only, no renders, illustrations, gradients or abstract art; each with its package,
version, path inside the package, SHA-256, licence and credit) with their fixed train/val split.
Nothing is downloaded by hand: each package version is fetched from the Debian archive with
``apt-get download <package>=<version>`` (https://packages.debian.org lists them) and unpacked with
``dpkg-deb -x`` into ``--cache`` (no installation). Every file is checked against its SHA-256; a
changed or missing file is reported by name. Needs apt-get and dpkg-deb (Debian/Ubuntu); without
apt-get, put the .deb files into ``<cache>/debs/`` (dpkg-deb unpacks them) and add ``--offline``.

Commands (from the repository root)::

    python scripts/data_preparation/package_photos.py --verify
        # downloads ~230 MB of packages once, writes the train crops and the validation LMDB
    python scripts/data_preparation/package_photos.py --png --verify
        # also PNG folders of the same images
    python scripts/data_preparation/package_photos.py --offline
        # only the cache (fails naming every package that is not there)

Outputs (default ``--output-root datasets/PackagePhotos``), colour, 3-channel BGR PNGs:

* ``train_crops.lmdb``: every train photo shrunk so that its short side is at most ``--short-side``
  (1024; area interpolation, which also averages away JPEG artefacts), then cut into BasicSR
  sub-images of ``--crop-size`` (256) every ``--step`` (256) pixels, keys ``<key>_s001`` ...
* ``val.lmdb``: every val photo shrunk the same way, then its centre ``--val-crop`` square (256;
  0 keeps the whole shrunk photo), keys ``<key>``
* with ``--png``: folders ``train_crops/`` and ``val/`` of the same images

The cache (default ``datasets/raw/PackagePhotos``) keeps the unpacked packages, so a rebuild does
not download again. Re-running skips complete outputs without touching the cache; an interrupted
run (``*.lmdb.partial``) is rebuilt. An output built from another manifest or other sizes is an
error unless ``--overwrite``.
"""
import argparse
import collections
import os
import sys

import cv2

from debian_sources import check_files, manifest_digest, read_manifest, unpack_packages  # beside this script
from gimsanet_prep.build import build_lmdb
from gimsanet_prep.cli import EPILOG, add_common_arguments, build_kwargs, cli_main, verify_outputs
from gimsanet_prep.crops import crop_key, extract_subimages
from gimsanet_prep.inputs import read_input_image
from gimsanet_prep.jobs import Job
from gimsanet_prep.lmdb_writer import folder_status, lmdb_status

SET = 'PackagePhotos'
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MANIFEST = os.path.join(HERE, 'package_photos.tsv')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument('--manifest', default=DEFAULT_MANIFEST,
                        help='the photo list (default: scripts/data_preparation/package_photos.tsv)')
    parser.add_argument('--cache', default='datasets/raw/PackagePhotos',
                        help='where the packages are downloaded and unpacked (default: datasets/raw/PackagePhotos)')
    parser.add_argument('--offline', action='store_true',
                        help='never download: use only the packages in --cache (unpacked/ or debs/)')
    parser.add_argument('--output-root', default=f'datasets/{SET}',
                        help=f'writes <root>/train_crops.lmdb and <root>/val.lmdb (default: datasets/{SET})')
    parser.add_argument('--splits', nargs='+', choices=['train', 'val'], default=['train', 'val'],
                        help='which outputs to build (default: both)')
    parser.add_argument('--short-side', type=int, default=1024,
                        help='shrink photos whose short side is longer than this (0: keep the size; default 1024)')
    parser.add_argument('--crop-size', type=int, default=256, help='train sub-image size (default 256)')
    parser.add_argument('--step', type=int, default=None, help='train sub-image stride (default: --crop-size)')
    parser.add_argument('--val-crop', type=int, default=256,
                        help='centre square of each val photo (0: the whole shrunk photo; default 256)')
    parser.add_argument('--png', action='store_true', help='also write PNG folders <root>/train_crops/ and <root>/val/')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.short_side < 0 or args.crop_size <= 0 or args.val_crop < 0 or (args.step is not None and args.step <= 0):
        parser.error('--short-side and --val-crop must be >= 0, --crop-size and --step > 0')
    args.step = args.step or args.crop_size
    return args


# ----------------------------------------------------------------------------------- images
def shrink(img, short_side):
    """``img`` scaled down (area interpolation) so that its short side is ``short_side``; smaller
    images, and ``short_side`` 0, are kept as they are."""
    h, w = img.shape[:2]
    if not short_side or min(h, w) <= short_side:
        return img
    scale = short_side / min(h, w)
    new_w = short_side if w <= h else round(w * scale)
    new_h = short_side if h <= w else round(h * scale)
    return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)


def centre_crop(img, size):
    """The centre ``size`` x ``size`` square of ``img`` (each side clipped to the image; 0: all)."""
    if not size:
        return img
    h, w = img.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[top:top + size, left:left + size].copy()


def photo_jobs(found, split, args):
    """One job per photo: read as colour, shrink, then sub-images (train) or the centre crop (val)."""

    def make(photo, path):
        def load():
            img = shrink(read_input_image(path, 'color'), args.short_side)
            if split == 'train':
                return [(crop_key(photo.key, i), c)
                        for i, c in extract_subimages(img, args.crop_size, args.step)]
            return [(photo.key, centre_crop(img, args.val_crop))]
        return Job(path, load)

    return [make(photo, path) for photo, path in found]


# ----------------------------------------------------------------------------------- plan
def plan(split, photos, args):
    """Output paths and the build parameters stored with them."""
    base = 'train_crops' if split == 'train' else 'val'
    info = {'set': SET, 'split': split, 'short_side': args.short_side,
            'photos': manifest_digest(photos), 'count': len(photos)}
    if split == 'train':
        info['crop'] = [args.crop_size, args.step, 0]
    else:
        info['val_crop'] = args.val_crop
    return {'split': split, 'photos': photos, 'info': info,
            'lmdb': os.path.join(args.output_root, base + '.lmdb'),
            'folder': os.path.join(args.output_root, base) if args.png else None}


def is_complete(p):
    return lmdb_status(p['lmdb']) == 'complete' and (not p['folder'] or folder_status(p['folder']) == 'complete')


def summary(photos):
    """``train: 44 photos (mate-backgrounds 10, ...)`` lines, per split and package."""
    lines = []
    for split in ('train', 'val'):
        counts = collections.Counter(p.package for p in photos if p.split == split)
        lines.append(f'{split}: {sum(counts.values())} photos ('
                     + ', '.join(f'{name} {n}' for name, n in sorted(counts.items())) + ')')
    return lines


def main(argv=None):
    args = parse_args(argv)
    photos = read_manifest(args.manifest)
    plans = [plan(split, [p for p in photos if p.split == split], args) for split in args.splits]
    todo = [p for p in plans if args.overwrite or not is_complete(p)]
    found = {}
    if todo:  # a re-run of a complete build reads neither the cache nor the network
        wanted = [photo for p in todo for photo in p['photos']]
        os.makedirs(args.cache, exist_ok=True)
        roots = unpack_packages(args.cache, [(ph.package, ph.version) for ph in wanted], download=not args.offline)
        for photo, path in check_files(wanted, roots):
            found.setdefault(photo.split, []).append((photo, path))
    for p in plans:
        jobs = photo_jobs(found.get(p['split'], []), p['split'], args)
        build_lmdb(p['lmdb'], jobs, folder=p['folder'], desc=f'{SET} {p["split"]}', info=p['info'],
                   **build_kwargs(args))
    for line in summary(photos):
        print(line)
    verify_outputs([p['lmdb'] for p in plans], args)


if __name__ == '__main__':
    sys.exit(cli_main(main))
