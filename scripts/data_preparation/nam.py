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
import sys

from gimsanet_prep.cli import real_mean_script

if __name__ == '__main__':
    sys.exit(real_mean_script('Nam', __doc__))
