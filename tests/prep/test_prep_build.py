"""gimsanet_prep.build / lmdb_writer: map size, atomic builds, idempotence, problems in one error."""
import os
import shutil

import cv2
import lmdb
import numpy as np
import pytest

import gimsanet_arch  # noqa: F401  (before basicsr)
from basicsr.utils import imfrombytes
from gimsanet_prep.build import build_lmdb, build_paired_lmdbs
from gimsanet_prep.errors import DataPreparationError, InputError, VerificationError
from gimsanet_prep.jobs import Job, paired_records, single_image_jobs
from gimsanet_prep.lmdb_writer import lmdb_status, read_build_info, required_map_size
from gimsanet_prep.verify import read_lmdb_image, verify_lmdb, verify_paired_lmdbs

from prep_records import jobs_for, random_images, read_all, text  # (helpers of this folder)


def test_tiny_set_builds_with_small_computed_map_size(tmp_path):
    path = str(tmp_path / 'tiny.lmdb')
    assert build_lmdb(path, jobs_for({'a': np.zeros((4, 4), np.uint8)}), progress=False) == {path: 'built'}
    assert verify_lmdb(path) == {'path': path, 'records': 1, 'checksums': True}
    assert text(os.path.join(path, 'meta_info.txt')) == 'a.png (4,4,1) 1\n'
    assert os.path.getsize(os.path.join(path, 'data.mdb')) < 2 << 20
    assert not os.path.exists(path + '.partial')
    assert required_map_size(0, 0) < 4 << 20


def test_map_size_grows_with_the_data(tmp_path):
    # incompressible images, much more data than the initial map, small commits: no MapFullError
    images = random_images(120, (64, 64, 3))
    path = str(tmp_path / 'big.lmdb')
    build_lmdb(path, jobs_for(images), batch_records=7, workers=3, progress=False)
    assert verify_lmdb(path, workers=2)['records'] == 120
    stored = read_all(path)
    assert sorted(stored) == sorted(images)
    for key, img in images.items():
        assert np.array_equal(imfrombytes(stored[key], 'unchanged'), img)
    env = lmdb.open(path, readonly=True, lock=False)
    used = env.info()['last_pgno'] * env.stat()['psize']
    env.close()
    assert used >= 120 * 64 * 64 * 3  # really stored, uncompressed noise


def test_workers_do_not_change_the_content_or_order(tmp_path):
    images = random_images(25)
    a, b = str(tmp_path / 'a.lmdb'), str(tmp_path / 'b.lmdb')
    build_lmdb(a, jobs_for(images), workers=1, progress=False)
    build_lmdb(b, jobs_for(images), workers=4, progress=False)
    for name in ('meta_info.txt', 'checksums.txt'):
        assert text(os.path.join(a, name)) == text(os.path.join(b, name))
    assert read_all(a) == read_all(b)


def test_values_are_basicsr_png_bytes(tmp_path):
    images = random_images(3)
    path = str(tmp_path / 'x.lmdb')
    build_lmdb(path, jobs_for(images), compress_level=3, progress=False)
    stored = read_all(path)
    for key, img in images.items():
        assert stored[key] == cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].tobytes()
    assert text(os.path.join(path, 'meta_info.txt')).splitlines()[0] == 'img000.png (24,20,3) 3'


def test_rerun_leaves_a_complete_lmdb_alone(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    build_lmdb(path, jobs_for(random_images(3)), progress=False)
    before = {n: os.stat(os.path.join(path, n)).st_mtime_ns for n in os.listdir(path)}

    def boom():
        raise AssertionError('inputs must not be read again')

    assert build_lmdb(path, [Job('x', boom)], progress=False) == {path: 'skipped'}
    assert {n: os.stat(os.path.join(path, n)).st_mtime_ns for n in os.listdir(path)} == before
    # --overwrite rebuilds
    assert build_lmdb(path, jobs_for(random_images(2, seed=1)), overwrite=True, progress=False) == {path: 'built'}
    assert verify_lmdb(path)['records'] == 2


def test_changed_parameters_are_not_silently_reused(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    build_lmdb(path, jobs_for(random_images(2)), info={'crop': [32, 24, 0]}, progress=False)
    assert read_build_info(path) == {'crop': [32, 24, 0]}
    assert build_lmdb(path, [], info={'crop': (32, 24, 0)}, progress=False) == {path: 'skipped'}
    with pytest.raises(DataPreparationError, match=r'other parameters \(crop: \[32, 24, 0\] there, \[32, 16, 0\]'):
        build_lmdb(path, [], info={'crop': [32, 16, 0]}, progress=False)


def test_leftover_partial_is_rebuilt(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    os.makedirs(path + '.partial')
    with open(os.path.join(path + '.partial', 'data.mdb'), 'wb') as f:
        f.write(b'half written')
    assert lmdb_status(path) == 'partial'
    with pytest.raises(VerificationError, match='interrupted build'):
        verify_lmdb(path)
    build_lmdb(path, jobs_for(random_images(4)), progress=False)
    assert lmdb_status(path) == 'complete'
    assert not os.path.exists(path + '.partial')
    assert verify_lmdb(path)['records'] == 4


def test_interrupted_build_leaves_no_final_lmdb(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    calls = []

    def load(i):
        calls.append(i)
        if i == 5:
            raise KeyboardInterrupt
        return [(f'k{i}', np.zeros((8, 8), np.uint8))]

    with pytest.raises(KeyboardInterrupt):
        build_lmdb(path, [Job(str(i), (lambda i: lambda: load(i))(i)) for i in range(10)],
                   batch_records=2, progress=False)
    assert calls == list(range(6))
    assert not os.path.exists(path) and not os.path.exists(path + '.partial')


def test_all_unreadable_inputs_and_bad_keys_in_one_error(tmp_path):
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), np.zeros((8, 8), np.uint8))
    corrupt1, corrupt2 = tmp_path / 'c1.png', tmp_path / 'c2.jpg'
    corrupt1.write_bytes(b'not a png')
    corrupt2.write_bytes(b'')
    missing = tmp_path / 'gone.png'
    items = [('good', str(good)), ('c1', str(corrupt1)), ('c2', str(corrupt2)), ('gone', str(missing)),
             ('bad.key', str(good)), ('good', str(good))]
    path = str(tmp_path / 'x.lmdb')
    with pytest.raises(InputError) as err:
        build_lmdb(path, single_image_jobs(items, 'gray'), workers=2, progress=False)
    msg = str(err.value)
    for expected in ('c1.png: unreadable', 'c2.jpg: unreadable', 'gone.png: file not found',
                     "invalid key 'bad.key'", "duplicate key 'good'"):
        assert expected in msg
    assert len(err.value.problems) == 5
    assert not os.path.exists(path) and not os.path.exists(path + '.partial')


def test_empty_input_is_an_error(tmp_path):
    with pytest.raises(InputError, match='no images'):
        build_lmdb(str(tmp_path / 'x.lmdb'), [], progress=False)


def test_lmdb_path_must_end_with_lmdb(tmp_path):
    with pytest.raises(ValueError, match=r"\.lmdb"):
        build_lmdb(str(tmp_path / 'x.db'), jobs_for(random_images(1)), progress=False)


def test_paired_build_checks_sizes_and_keys(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    jobs = [Job('p', lambda: paired_records('p', 255 - gt, gt, crop=(32, 24, 0)))]
    lq_path, gt_path = str(tmp_path / 'lq.lmdb'), str(tmp_path / 'gt.lmdb')
    build_paired_lmdbs(lq_path, gt_path, jobs, progress=False)
    assert [r['records'] for r in verify_paired_lmdbs(lq_path, gt_path)] == [4, 4]
    assert np.array_equal(read_lmdb_image(lq_path, 'p_s004'), 255 - gt[8:40, 8:40])
    assert np.array_equal(read_lmdb_image(gt_path, 'p_s004'), gt[8:40, 8:40])
    with pytest.raises(InputError, match=r'noisy image is \(40, 40, 3\) but clean image is \(40, 39, 3\)'):
        paired_records('q', gt, gt[:, :39])


def test_only_the_missing_half_of_a_pair_is_rebuilt(tmp_path):
    images = random_images(3)
    jobs = [Job(k, (lambda k, im: lambda: [(k, {'lq': 255 - im, 'gt': im})])(k, im)) for k, im in images.items()]
    lq_path, gt_path = str(tmp_path / 'lq.lmdb'), str(tmp_path / 'gt.lmdb')
    build_paired_lmdbs(lq_path, gt_path, jobs, progress=False)
    lq_mtime = os.stat(os.path.join(lq_path, 'data.mdb')).st_mtime_ns
    shutil.rmtree(gt_path)
    assert build_paired_lmdbs(lq_path, gt_path, jobs, progress=False) == {lq_path: 'skipped', gt_path: 'built'}
    assert os.stat(os.path.join(lq_path, 'data.mdb')).st_mtime_ns == lq_mtime
    verify_paired_lmdbs(lq_path, gt_path)


def test_inconsistent_existing_folder_is_refused(tmp_path):
    path = tmp_path / 'x.lmdb'
    path.mkdir()
    (path / 'meta_info.txt').write_text('a.png (4,4,1) 1\n')
    assert lmdb_status(str(path)) == 'inconsistent'
    with pytest.raises(DataPreparationError, match='not a complete LMDB'):
        build_lmdb(str(path), jobs_for(random_images(1)), progress=False)
    assert build_lmdb(str(path), jobs_for(random_images(1)), overwrite=True, progress=False)[str(path)] == 'built'
