#!/usr/bin/env python
"""Nam et al. (CVPR 2016) real noisy images, the "CC" 512x512 crops -> paired BasicSR LMDBs for testing.

Data: "A Holistic Approach to Cross-Channel Image Noise Modeling and its Application to Image
Denoising" (Nam, Hwang, Matsushita, Kim, CVPR 2016,
https://openaccess.thecvf.com/content_cvpr_2016/html/Nam_A_Holistic_Approach_CVPR_2016_paper.html):
11 static scenes shot ~500 times with Canon
5D Mark III, Nikon D600 and D800; the clean image is the mean. The usual test set ("CC", "CC15")
is 15 cropped 512x512 pairs ``5dmark3_iso3200_1_real.png`` (noisy) / ``5dmark3_iso3200_1_mean.png``
(clean), ``d600_iso3200_1_*``, ``d800_iso1600_1_*`` ...; the authors' page is often offline, the
crops are redistributed with several real-denoising repositories (e.g. as ``CC/real`` +
``CC/mean``). Put them in ``datasets/raw/Nam/`` (one folder, or its ``real/`` and ``mean/``
subfolders).

Command (from the repository root)::

    python scripts/data_preparation/nam.py --verify            # LMDBs
    python scripts/data_preparation/nam.py --png --verify      # and PNG folders

Outputs (default ``--output-root datasets/Nam/test``): ``datasets/Nam/test/input.lmdb`` (noisy)
and ``datasets/Nam/test/gt.lmdb`` (clean) with identical keys, the file name without
``_real`` / ``_mean`` (e.g. ``5dmark3_iso3200_1``); with ``--png`` also the folders
``datasets/Nam/test/input/`` and ``gt/`` (``<key>.png``), as BasicSR's ``PairedImageDataset``
reads them.
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

NAME = 'Nam'
DEFAULT_INPUT = 'datasets/raw/Nam'
DEFAULT_OUTPUT = 'datasets/Nam/test'
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
