"""gimsanet_prep.verify: every failed check reported, BasicSR-made LMDBs accepted."""
import os

import cv2
import lmdb
import numpy as np
import pytest

import gimsanet_arch  # noqa: F401  (before basicsr)
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from gimsanet_prep.build import build_lmdb
from gimsanet_prep.errors import VerificationError
from gimsanet_prep.lmdb_writer import lmdb_status
from gimsanet_prep.verify import verify_lmdb

from prep_records import jobs_for, random_images  # (helpers of this folder)


def test_verify_reports_every_problem(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    build_lmdb(path, jobs_for(random_images(6)), progress=False)
    env = lmdb.open(path, map_size=64 << 20)
    with env.begin(write=True) as txn:
        txn.put(b'img000', b'garbage')  # undecodable (and checksum mismatch)
        txn.put(b'img001', cv2.imencode('.png', np.zeros((5, 5, 3), np.uint8))[1].tobytes())  # wrong shape
        txn.delete(b'img002')  # missing
        txn.put(b'stray', b'x')  # not in meta_info
    env.close()
    with pytest.raises(VerificationError) as err:
        verify_lmdb(path, workers=2)
    msg = str(err.value)
    assert "key 'img000': checksum mismatch" in msg and "key 'img000': stored bytes do not decode" in msg
    assert "key 'img001': decoded shape (5, 5, 3) but meta_info.txt says (24, 20, 3)" in msg
    assert "key 'img002': listed in meta_info.txt but missing" in msg
    assert "key 'stray': in the database but not in meta_info.txt" in msg
    assert 'img003' not in msg


def test_verify_rejects_malformed_meta_info(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    build_lmdb(path, jobs_for(random_images(2)), progress=False)
    with open(os.path.join(path, 'meta_info.txt'), 'a') as f:
        f.write('img000.png (24,20,3) 1\nnonsense\n')
    with pytest.raises(VerificationError) as err:
        verify_lmdb(path)
    assert "malformed 'nonsense'" in str(err.value)


def test_basicsr_made_lmdb_is_complete_and_verifiable(tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    images = random_images(3)
    for key, img in images.items():
        cv2.imwrite(str(folder / f'{key}.png'), img)
    path = str(tmp_path / 'basicsr.lmdb')
    make_lmdb_from_imgs(str(folder), path, [f'{k}.png' for k in images], list(images), map_size=64 << 20)
    assert lmdb_status(path) == 'complete'
    assert verify_lmdb(path) == {'path': path, 'records': 3, 'checksums': False}
    assert build_lmdb(path, [], progress=False) == {path: 'skipped'}
