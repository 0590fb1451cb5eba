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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from gimsanet_prep.cli import cli_main, real_mean_test_set_main  # noqa: E402  (after the root is on sys.path)


def main(argv=None):
    real_mean_test_set_main(argv, name='PolyU', description=__doc__.split('\n\n')[0],
                            default_input='datasets/raw/PolyU/CroppedImages', default_output='datasets/PolyU/test')


if __name__ == '__main__':
    sys.exit(cli_main(main))
