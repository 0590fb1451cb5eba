#!/usr/bin/env python
"""PolyU real-world noisy images (100 cropped 512x512 pairs) -> paired BasicSR LMDBs for testing.

Download: https://github.com/csjunxu/PolyU-Real-World-Noisy-Images-Dataset (Xu et al., 2018,
arXiv:1804.02603, which gives the older address https://github.com/csjunxu/PolyUDataset),
folder ``CroppedImages`` (100 crops ``<camera>_<...>_real.JPG`` noisy / ``..._mean.JPG`` clean,
the mean of ~500 shots) -> ``datasets/raw/PolyU/CroppedImages/``.

Command (from the repository root)::

    python scripts/data_preparation/polyu.py --verify            # LMDBs
    python scripts/data_preparation/polyu.py --png --verify      # and PNG folders

Outputs (default ``--output-root datasets/PolyU/test``): ``datasets/PolyU/test/input.lmdb`` (noisy)
and ``datasets/PolyU/test/gt.lmdb`` (clean) with identical keys, the file name without
``_real`` / ``_mean`` (e.g. ``Canon5D2_5_160_3200_chair_11``); with ``--png`` also the folders
``datasets/PolyU/test/input/`` and ``gt/`` (``<key>.png``). Images are decoded from JPEG once
and stored losslessly (PNG, BGR) as BasicSR's ``PairedImageDataset`` reads them.
"""
import argparse
import importlib.util
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_lmdb_tools():
    """``gimsanet_arch/data/lmdb_tools.py`` without running ``gimsanet_arch/__init__`` (which
    imports torch and basicsr, ~5 s); lmdb_tools itself needs neither."""
    if 'gimsanet_arch.data.lmdb_tools' in sys.modules:
        return sys.modules['gimsanet_arch.data.lmdb_tools']
    spec = importlib.util.spec_from_file_location(
        '_gimsanet_lmdb_tools', os.path.join(REPO_ROOT, 'gimsanet_arch', 'data', 'lmdb_tools.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lt = _load_lmdb_tools()

NAME = 'PolyU'
DEFAULT_INPUT = 'datasets/raw/PolyU/CroppedImages'
DEFAULT_OUTPUT = 'datasets/PolyU/test'
NOISY_TAG, CLEAN_TAG = '_real', '_mean'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='See the module docstring / docs/data_preparation.md for downloads.')
    parser.add_argument('--input', default=DEFAULT_INPUT,
                        help=f'folder with the *{NOISY_TAG}.* / *{CLEAN_TAG}.* pairs (default: {DEFAULT_INPUT})')
    parser.add_argument('--output-root', default=DEFAULT_OUTPUT,
                        help='writes <root>/input.lmdb and <root>/gt.lmdb (and <root>/input/, gt/ with --png)')
    parser.add_argument('--png', action='store_true', help='also write PNG folders <root>/input/ and <root>/gt/')
    parser.add_argument('--no-lmdb', action='store_true', help='PNG folders only (implies --png)')
    lt.add_common_arguments(parser)
    return parser.parse_args(argv)


def find_pairs(folder):
    """(pairs, unpaired-file problems) in ``folder``, or in its ``real/`` and ``mean/`` subfolders."""
    noisy_dir, clean_dir = os.path.join(folder, 'real'), os.path.join(folder, 'mean')
    if os.path.isdir(noisy_dir) and os.path.isdir(clean_dir):
        return lt.find_pairs(noisy_dir, NOISY_TAG, CLEAN_TAG, clean_folder=clean_dir, strict=False)
    return lt.find_pairs(folder, NOISY_TAG, CLEAN_TAG, strict=False)


def main(argv=None):
    args = parse_args(argv)
    lq, gt = (None, None) if args.no_lmdb else (os.path.join(args.output_root, 'input.lmdb'),
                                                  os.path.join(args.output_root, 'gt.lmdb'))
    folders = (os.path.join(args.output_root, 'input'), os.path.join(args.output_root, 'gt')) \
        if args.png or args.no_lmdb else (None, None)
    statuses = [lt.lmdb_status(p) for p in (lq, gt) if p] + [lt.folder_status(p) for p in folders if p]
    # inputs are only read when something needs building: a re-run of a complete build is a no-op
    pairs, problems = find_pairs(args.input) \
        if args.overwrite or any(s != 'complete' for s in statuses) else ([], [])
    # unpaired files are reported together with unreadable ones (a test set is small to read)
    lt.build_paired_lmdbs(lq, gt, lt.paired_image_jobs(pairs, 'color'), *folders, desc=NAME,
                          info={'set': NAME}, input_problems=problems, **lt.build_kwargs(args))
    if lq:
        lt.verify_outputs([lq, gt], args, pairs=[(lq, gt)])


if __name__ == '__main__':
    sys.exit(lt.cli_main(main))
