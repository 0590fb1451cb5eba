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
import sys

from gimsanet_prep.cli import real_mean_script

if __name__ == '__main__':
    sys.exit(real_mean_script('PolyU', __doc__))
