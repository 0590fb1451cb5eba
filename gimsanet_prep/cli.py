"""What the preparation scripts share on the command line: the common arguments, running a
``main`` with one-line errors, ``--verify``, and the whole CLI of the real-noise test sets
stored as ``*_real`` / ``*_mean`` pairs (PolyU, Nam)."""
import argparse
import os
import sys

from gimsanet_prep.build import build_paired_lmdbs
from gimsanet_prep.errors import DataPreparationError, InputError
from gimsanet_prep.inputs import find_real_mean_pairs
from gimsanet_prep.jobs import paired_image_jobs
from gimsanet_prep.lmdb_writer import folder_status, lmdb_status
from gimsanet_prep.verify import check_same_keys, verify_lmdb

EPILOG = 'See the module docstring / docs/data_preparation.md for downloads.'


def add_common_arguments(parser):
    """``--workers``, ``--verify``, ``--overwrite``, ``--compress-level``, ``--no-progress``."""
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                        help='threads that read, crop and PNG-encode images (default: min(8, CPUs))')
    parser.add_argument('--verify', action='store_true',
                        help='read back every key of every output LMDB and check shape and checksum')
    parser.add_argument('--overwrite', action='store_true',
                        help='rebuild outputs that exist already (default: leave complete ones alone)')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression level of the stored images (BasicSR uses 1)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def build_kwargs(args):
    """Keyword arguments of :func:`gimsanet_prep.build.build` from the common CLI arguments."""
    return dict(workers=max(1, args.workers), compress_level=args.compress_level, overwrite=args.overwrite,
                progress=not args.no_progress)


def verify_outputs(lmdb_paths, args, pairs=()):
    """Verify LMDBs (and paired key equality) after a build when ``--verify`` was given."""
    if not args.verify:
        return
    for path in lmdb_paths:
        report = verify_lmdb(path, workers=max(1, args.workers), progress=not args.no_progress)
        print(f'verified {path}: {report["records"]} records OK'
              f'{"" if report["checksums"] else " (no checksums.txt: decode and shape checks only)"}')
    for lq, gt in pairs:
        check_same_keys(lq, gt)
        print(f'verified {lq} and {gt}: same keys and sizes')


def cli_main(main, argv=None):
    """Run ``main(argv)``; a :class:`DataPreparationError` becomes one message and exit status 2."""
    try:
        main(argv)
    except DataPreparationError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


# ----------------------------------------------------------------------------- real/mean test sets
def _real_mean_args(argv, description, default_input, default_output, noisy_tag, clean_tag, expected=None):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=EPILOG)
    parser.add_argument('--input', default=default_input,
                        help=f'folder with the *{noisy_tag}.* / *{clean_tag}.* pairs (default: {default_input})')
    parser.add_argument('--output-root', default=default_output,
                        help='writes <root>/input.lmdb and <root>/gt.lmdb (and <root>/input/, gt/ with --png)')
    parser.add_argument('--png', action='store_true', help='also write PNG folders <root>/input/ and <root>/gt/')
    parser.add_argument('--no-lmdb', action='store_true', help='PNG folders only (implies --png)')
    if expected:
        parser.add_argument('--any-count', action='store_true',
                            help=f'build it although it has not the standard {expected} pairs')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def real_mean_test_set_main(argv, name, description, default_input, default_output, noisy_tag='_real',
                            clean_tag='_mean', expected=None):
    """The whole CLI of a real-noise test set stored as ``*_real`` / ``*_mean`` pairs (PolyU, Nam):
    paired LMDBs ``<root>/input.lmdb`` / ``gt.lmdb`` and optional PNG folders. ``expected``: the
    standard number of pairs; another count is refused unless ``--any-count``."""
    args = _real_mean_args(argv, description, default_input, default_output, noisy_tag, clean_tag, expected)
    lq, gt = (None, None) if args.no_lmdb else (os.path.join(args.output_root, 'input.lmdb'),
                                                  os.path.join(args.output_root, 'gt.lmdb'))
    folders = (os.path.join(args.output_root, 'input'), os.path.join(args.output_root, 'gt')) \
        if args.png or args.no_lmdb else (None, None)
    statuses = [lmdb_status(p) for p in (lq, gt) if p] + [folder_status(p) for p in folders if p]
    # inputs are only read when something needs building: a re-run of a complete build is a no-op
    pairs, problems = find_real_mean_pairs(args.input, noisy_tag, clean_tag) \
        if args.overwrite or any(s != 'complete' for s in statuses) else ([], [])
    # a partial download would be scored as if it were the set (unpaired files: reported below instead)
    if expected and pairs and not problems and len(pairs) != expected and not args.any_count:
        raise InputError([f'{name}: found {len(pairs)} pairs in {args.input}, the standard set has {expected}; '
                          'check the download, or pass --any-count to build it anyway'],
                         header=f'{name} is not the standard set')
    # unpaired files are reported together with unreadable ones (a test set is small to read)
    build_paired_lmdbs(lq, gt, paired_image_jobs(pairs, 'color'), *folders, desc=name,
                       info={'set': name}, input_problems=problems, **build_kwargs(args))
    if lq:
        verify_outputs([lq, gt], args, pairs=[(lq, gt)])


# the real/mean test sets: name -> (default input folder, default output root, standard number of pairs)
REAL_MEAN_SETS = {
    'PolyU': ('datasets/raw/PolyU/CroppedImages', 'datasets/PolyU/test', 100),
    'Nam': ('datasets/raw/Nam', 'datasets/Nam/test', 15),  # the "CC15" crops
}


def real_mean_script(name, doc, argv=None):
    """The whole script of a real/mean test set of :data:`REAL_MEAN_SETS` (its ``__doc__`` gives
    the description); returns the exit status."""
    default_input, default_output, expected = REAL_MEAN_SETS[name]
    return cli_main(lambda args: real_mean_test_set_main(args, name, doc.split('\n\n')[0], default_input,
                                                         default_output, expected=expected), argv)
