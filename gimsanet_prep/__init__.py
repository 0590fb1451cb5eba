"""Data preparation for GIMSANet: raw datasets -> BasicSR LMDBs (and PNG folders), safely.

A package of its own, beside ``gimsanet_arch``, because it needs neither torch nor basicsr: it
imports only numpy, OpenCV, lmdb and tqdm (scipy and h5py when a ``.mat`` file is read), so the
scripts in ``scripts/data_preparation/`` start fast and run where torch is not installed.
Importing this package imports none of its modules.

Modules, in the order data flows through them:

* ``images``      the project's one image reader (also used by the datasets), PNG encoding
* ``errors``      InputError / VerificationError: every problem, in one message
* ``inputs``      listing and reading raw images, noisy/clean pairing, LMDB keys
* ``matfile``     MATLAB .mat arrays (v5 via scipy, v7.3 via h5py)
* ``crops``       BasicSR's overlapping sub-images
* ``jobs``        units of work and the ordered thread pool that runs them
* ``lmdb_writer`` the on-disk format, map sizing, atomic ``.partial`` outputs, output status
* ``build``       which outputs need building; jobs -> records -> every output
* ``verify``      reading a built LMDB back and checking every record
* ``cli``         argparse helpers shared by the scripts, the PolyU/Nam command
"""
