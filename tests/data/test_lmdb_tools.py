"""gimsanet_arch.data.lmdb_tools: map size, atomic builds, idempotence, verification, inputs."""
import os

import cv2
import h5py
import lmdb
import numpy as np
import pytest
import scipy.io

import gimsanet_arch  # noqa: F401  (before basicsr)
from basicsr.utils import imfrombytes
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from gimsanet_arch.data import lmdb_tools as lt


def _text(path):
    with open(path) as f:
        return f.read()


def _jobs(images):
    """Jobs for ``{key: image}``, one record each."""
    return [lt.Job(key, (lambda k, im: lambda: [(k, im)])(key, img)) for key, img in images.items()]


def _random_images(n, shape=(24, 20, 3), seed=0):
    rng = np.random.default_rng(seed)
    return {f'img{i:03d}': rng.integers(0, 256, shape, dtype=np.uint8) for i in range(n)}


def _read_all(path):
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        out = {k.decode(): bytes(v) for k, v in txn.cursor()}
    env.close()
    return out


# ------------------------------------------------------------------------------------ sub-images
def _basicsr_space(length, crop, step, thresh):
    # the code of BasicSR's scripts/data_preparation/extract_subimages.py
    space = np.arange(0, length - crop + 1, step)
    if length - (space[-1] + crop) > thresh:
        space = np.append(space, length - crop)
    return list(space)


@pytest.mark.parametrize('length,crop,step,thresh', [(64, 32, 24, 0), (3000, 512, 384, 0), (5328, 512, 384, 0),
                                                     (180, 128, 64, 0), (100, 32, 16, 10), (64, 64, 16, 0)])
def test_crop_positions_match_basicsr(length, crop, step, thresh):
    assert lt.crop_positions(length, crop, step, thresh) == _basicsr_space(length, crop, step, thresh)


def test_extract_subimages_order_content_and_small_images():
    img = np.arange(64 * 48, dtype=np.uint32).reshape(64, 48).astype(np.uint8)
    crops = lt.extract_subimages(img, 32, 24)
    assert [i for i, _ in crops] == list(range(1, 7))  # rows [0, 24, 32] x cols [0, 16]
    assert np.array_equal(crops[1][1], img[0:32, 16:48])
    assert np.array_equal(crops[2][1], img[24:56, 0:32])
    assert lt.crop_key('0001_SRGB_010', 3) == '0001_SRGB_010_s003'
    small = np.zeros((20, 40, 3), np.uint8)
    assert len(lt.extract_subimages(small, 32, 24)) == 1
    assert lt.extract_subimages(small, 32, 24, keep_small=False) == []


# ------------------------------------------------------------------------------------ build
def test_tiny_set_builds_with_small_computed_map_size(tmp_path):
    path = str(tmp_path / 'tiny.lmdb')
    assert lt.build_lmdb(path, _jobs({'a': np.zeros((4, 4), np.uint8)}), progress=False) == {path: 'built'}
    assert lt.verify_lmdb(path) == {'path': path, 'records': 1, 'checksums': True}
    assert _text(os.path.join(path, 'meta_info.txt')) == 'a.png (4,4,1) 1\n'
    assert os.path.getsize(os.path.join(path, 'data.mdb')) < 2 << 20
    assert not os.path.exists(path + '.partial')
    assert lt.required_map_size(0, 0) < 4 << 20


def test_map_size_grows_with_the_data(tmp_path):
    # incompressible images, much more data than the initial map, small commits: no MapFullError
    images = _random_images(120, (64, 64, 3))
    path = str(tmp_path / 'big.lmdb')
    lt.build_lmdb(path, _jobs(images), batch_records=7, workers=3, progress=False)
    assert lt.verify_lmdb(path, workers=2)['records'] == 120
    stored = _read_all(path)
    assert sorted(stored) == sorted(images)
    for key, img in images.items():
        assert np.array_equal(imfrombytes(stored[key], 'unchanged'), img)
    env = lmdb.open(path, readonly=True, lock=False)
    used = env.info()['last_pgno'] * env.stat()['psize']
    env.close()
    assert used >= 120 * 64 * 64 * 3  # really stored, uncompressed noise


def test_workers_do_not_change_the_content_or_order(tmp_path):
    images = _random_images(25)
    a, b = str(tmp_path / 'a.lmdb'), str(tmp_path / 'b.lmdb')
    lt.build_lmdb(a, _jobs(images), workers=1, progress=False)
    lt.build_lmdb(b, _jobs(images), workers=4, progress=False)
    for name in ('meta_info.txt', 'checksums.txt'):
        assert _text(os.path.join(a, name)) == _text(os.path.join(b, name))
    assert _read_all(a) == _read_all(b)


def test_values_are_basicsr_png_bytes(tmp_path):
    images = _random_images(3)
    path = str(tmp_path / 'x.lmdb')
    lt.build_lmdb(path, _jobs(images), compress_level=3, progress=False)
    stored = _read_all(path)
    for key, img in images.items():
        assert stored[key] == cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].tobytes()
    assert _text(os.path.join(path, 'meta_info.txt')).splitlines()[0] == 'img000.png (24,20,3) 3'


def test_rerun_leaves_a_complete_lmdb_alone(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    lt.build_lmdb(path, _jobs(_random_images(3)), progress=False)
    before = {n: os.stat(os.path.join(path, n)).st_mtime_ns for n in os.listdir(path)}

    def boom():
        raise AssertionError('inputs must not be read again')

    assert lt.build_lmdb(path, [lt.Job('x', boom)], progress=False) == {path: 'skipped'}
    assert {n: os.stat(os.path.join(path, n)).st_mtime_ns for n in os.listdir(path)} == before
    # --overwrite rebuilds
    assert lt.build_lmdb(path, _jobs(_random_images(2, seed=1)), overwrite=True, progress=False) == {path: 'built'}
    assert lt.verify_lmdb(path)['records'] == 2


def test_changed_parameters_are_not_silently_reused(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    lt.build_lmdb(path, _jobs(_random_images(2)), info={'crop': [32, 24, 0]}, progress=False)
    assert lt.read_build_info(path) == {'crop': [32, 24, 0]}
    assert lt.build_lmdb(path, [], info={'crop': (32, 24, 0)}, progress=False) == {path: 'skipped'}
    with pytest.raises(lt.DataPreparationError, match=r'other parameters \(crop: \[32, 24, 0\] there, \[32, 16, 0\]'):
        lt.build_lmdb(path, [], info={'crop': [32, 16, 0]}, progress=False)


def test_leftover_partial_is_rebuilt(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    os.makedirs(path + '.partial')
    with open(os.path.join(path + '.partial', 'data.mdb'), 'wb') as f:
        f.write(b'half written')
    assert lt.lmdb_status(path) == 'partial'
    with pytest.raises(lt.VerificationError, match='interrupted build'):
        lt.verify_lmdb(path)
    lt.build_lmdb(path, _jobs(_random_images(4)), progress=False)
    assert lt.lmdb_status(path) == 'complete'
    assert not os.path.exists(path + '.partial')
    assert lt.verify_lmdb(path)['records'] == 4


def test_interrupted_build_leaves_no_final_lmdb(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    calls = []

    def load(i):
        calls.append(i)
        if i == 5:
            raise KeyboardInterrupt
        return [(f'k{i}', np.zeros((8, 8), np.uint8))]

    with pytest.raises(KeyboardInterrupt):
        lt.build_lmdb(path, [lt.Job(str(i), (lambda i: lambda: load(i))(i)) for i in range(10)],
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
    with pytest.raises(lt.InputError) as err:
        lt.build_lmdb(path, lt.single_image_jobs(items, 'gray'), workers=2, progress=False)
    msg = str(err.value)
    for expected in ('c1.png: unreadable', 'c2.jpg: unreadable', 'gone.png: file not found',
                     "invalid key 'bad.key'", "duplicate key 'good'"):
        assert expected in msg
    assert len(err.value.problems) == 5
    assert not os.path.exists(path) and not os.path.exists(path + '.partial')


def test_empty_input_is_an_error(tmp_path):
    with pytest.raises(lt.InputError, match='no images'):
        lt.build_lmdb(str(tmp_path / 'x.lmdb'), [], progress=False)


def test_lmdb_path_must_end_with_lmdb(tmp_path):
    with pytest.raises(ValueError, match=r"\.lmdb"):
        lt.build_lmdb(str(tmp_path / 'x.db'), _jobs(_random_images(1)), progress=False)


def test_paired_build_checks_sizes_and_keys(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    jobs = [lt.Job('p', lambda: lt.paired_records('p', 255 - gt, gt, crop=(32, 24, 0)))]
    lq_path, gt_path = str(tmp_path / 'lq.lmdb'), str(tmp_path / 'gt.lmdb')
    lt.build_paired_lmdbs(lq_path, gt_path, jobs, progress=False)
    assert [r['records'] for r in lt.verify_paired_lmdbs(lq_path, gt_path)] == [4, 4]
    assert np.array_equal(lt.read_lmdb_image(lq_path, 'p_s004'), 255 - gt[8:40, 8:40])
    assert np.array_equal(lt.read_lmdb_image(gt_path, 'p_s004'), gt[8:40, 8:40])
    with pytest.raises(lt.InputError, match=r'noisy image is \(40, 40, 3\) but clean image is \(40, 39, 3\)'):
        lt.paired_records('q', gt, gt[:, :39])


def test_only_the_missing_half_of_a_pair_is_rebuilt(tmp_path):
    images = _random_images(3)
    jobs = [lt.Job(k, (lambda k, im: lambda: [(k, {'lq': 255 - im, 'gt': im})])(k, im)) for k, im in images.items()]
    lq_path, gt_path = str(tmp_path / 'lq.lmdb'), str(tmp_path / 'gt.lmdb')
    lt.build_paired_lmdbs(lq_path, gt_path, jobs, progress=False)
    lq_mtime = os.stat(os.path.join(lq_path, 'data.mdb')).st_mtime_ns
    import shutil
    shutil.rmtree(gt_path)
    assert lt.build_paired_lmdbs(lq_path, gt_path, jobs, progress=False) == {lq_path: 'skipped', gt_path: 'built'}
    assert os.stat(os.path.join(lq_path, 'data.mdb')).st_mtime_ns == lq_mtime
    lt.verify_paired_lmdbs(lq_path, gt_path)


# ------------------------------------------------------------------------------------ verify
def test_verify_reports_every_problem(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    lt.build_lmdb(path, _jobs(_random_images(6)), progress=False)
    env = lmdb.open(path, map_size=64 << 20)
    with env.begin(write=True) as txn:
        txn.put(b'img000', b'garbage')  # undecodable (and checksum mismatch)
        txn.put(b'img001', cv2.imencode('.png', np.zeros((5, 5, 3), np.uint8))[1].tobytes())  # wrong shape
        txn.delete(b'img002')  # missing
        txn.put(b'stray', b'x')  # not in meta_info
    env.close()
    with pytest.raises(lt.VerificationError) as err:
        lt.verify_lmdb(path, workers=2)
    msg = str(err.value)
    assert "key 'img000': checksum mismatch" in msg and "key 'img000': stored bytes do not decode" in msg
    assert "key 'img001': decoded shape (5, 5, 3) but meta_info.txt says (24, 20, 3)" in msg
    assert "key 'img002': listed in meta_info.txt but missing" in msg
    assert "key 'stray': in the database but not in meta_info.txt" in msg
    assert 'img003' not in msg


def test_verify_rejects_malformed_meta_info(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    lt.build_lmdb(path, _jobs(_random_images(2)), progress=False)
    with open(os.path.join(path, 'meta_info.txt'), 'a') as f:
        f.write('img000.png (24,20,3) 1\nnonsense\n')
    with pytest.raises(lt.VerificationError) as err:
        lt.verify_lmdb(path)
    assert "malformed 'nonsense'" in str(err.value)


def test_basicsr_made_lmdb_is_complete_and_verifiable(tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    images = _random_images(3)
    for key, img in images.items():
        cv2.imwrite(str(folder / f'{key}.png'), img)
    path = str(tmp_path / 'basicsr.lmdb')
    make_lmdb_from_imgs(str(folder), path, [f'{k}.png' for k in images], list(images), map_size=64 << 20)
    assert lt.lmdb_status(path) == 'complete'
    assert lt.verify_lmdb(path) == {'path': path, 'records': 3, 'checksums': False}
    assert lt.build_lmdb(path, [], progress=False) == {path: 'skipped'}


def test_inconsistent_existing_folder_is_refused(tmp_path):
    path = tmp_path / 'x.lmdb'
    path.mkdir()
    (path / 'meta_info.txt').write_text('a.png (4,4,1) 1\n')
    assert lt.lmdb_status(str(path)) == 'inconsistent'
    with pytest.raises(lt.DataPreparationError, match='not a complete LMDB'):
        lt.build_lmdb(str(path), _jobs(_random_images(1)), progress=False)
    assert lt.build_lmdb(str(path), _jobs(_random_images(1)), overwrite=True, progress=False)[str(path)] == 'built'


# ------------------------------------------------------------------------------------ inputs
def test_find_pairs_lists_every_unpaired_file(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    for name in ('a_real.JPG', 'a_mean.JPG', 'b_real.JPG', 'c_mean.jpg', 'notes.txt', 'other.png'):
        (tmp_path / name).write_bytes(cv2.imencode('.jpg', img)[1].tobytes())
    with pytest.raises(lt.InputError) as err:
        lt.find_pairs(str(tmp_path), '_real', '_mean')
    assert len(err.value.problems) == 2
    assert 'b_real.JPG: no matching clean image' in str(err.value)
    assert 'c_mean.jpg: no matching noisy image' in str(err.value)
    pairs, problems = lt.find_pairs(str(tmp_path), '_real', '_mean', strict=False)
    assert [p[0] for p in pairs] == ['a'] and len(problems) == 2
    with pytest.raises(lt.InputError, match='folder not found'):
        lt.find_pairs(str(tmp_path / 'nope'), '_real', '_mean')


def test_load_mat_array_matlab5_and_v73(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    v5 = str(tmp_path / 'v5.mat')
    scipy.io.savemat(v5, {'ValidationNoisyBlocksSrgb': arr})
    out = lt.load_mat_array(v5, 'ValidationNoisyBlocksSrgb')
    assert out.dtype == np.uint8 and np.array_equal(out, arr)
    with pytest.raises(lt.InputError, match="'ValidationGtBlocksSrgb' not found.*ValidationNoisyBlocksSrgb"):
        lt.load_mat_array(v5, 'ValidationGtBlocksSrgb')
    # MATLAB v7.3: HDF5 with a 512-byte MATLAB header; arrays stored column-major (axes reversed)
    v73 = str(tmp_path / 'v73.mat')
    with h5py.File(v73, 'w', userblock_size=512) as f:
        f.create_dataset('ValidationGtBlocksSrgb', data=np.transpose(arr))
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .'
    with open(v73, 'r+b') as f:
        f.write(header.ljust(116) + b'\x00' * 8 + b'\x00\x02' + b'IM')
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(v73)
    assert np.array_equal(lt.load_mat_array(v73, 'ValidationGtBlocksSrgb'), arr)
    with pytest.raises(lt.InputError, match="'x' not found"):
        lt.load_mat_array(v73, 'x')
    junk = tmp_path / 'junk.mat'
    junk.write_bytes(b'nothing to see')
    with pytest.raises(lt.InputError, match='junk.mat: not a readable MATLAB file'):
        lt.load_mat_array(str(junk), 'x')
    with pytest.raises(lt.InputError, match='file not found'):
        lt.load_mat_array(str(tmp_path / 'gone.mat'), 'x')


def test_read_image_modes(tmp_path):
    bgra = np.random.default_rng(0).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    p = str(tmp_path / 'a.png')
    cv2.imwrite(p, bgra)
    assert lt.read_image(p).shape == (6, 7, 3)
    assert lt.read_image(p, 'gray').shape == (6, 7)
    p16 = str(tmp_path / 'b.png')
    cv2.imwrite(p16, np.zeros((4, 4), np.uint16))
    with pytest.raises(lt.InputError, match='8-bit'):
        lt.read_image(p16)


def test_lmdb_tools_imports_neither_torch_nor_basicsr():
    import subprocess
    import sys
    code = ('import importlib.util, sys; spec = importlib.util.spec_from_file_location("m", sys.argv[1]); '
            'm = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); '
            'print(any(n.split(".")[0] in ("torch", "basicsr", "gimsanet_arch") for n in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code, lt.__file__], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'
