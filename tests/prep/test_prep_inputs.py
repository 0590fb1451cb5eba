"""gimsanet_prep.inputs and matfile: listing, reading, pairing, keys, .mat files."""
import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from gimsanet_prep.errors import InputError
from gimsanet_prep.inputs import (find_pairs, key_problem, list_input_images, read_input_image, require_files,
                                  sanitize_key)
from gimsanet_prep.matfile import load_mat_array


def test_find_pairs_lists_every_unpaired_file(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    for name in ('a_real.JPG', 'a_mean.JPG', 'b_real.JPG', 'c_mean.jpg', 'notes.txt', 'other.png'):
        (tmp_path / name).write_bytes(cv2.imencode('.jpg', img)[1].tobytes())
    with pytest.raises(InputError) as err:
        find_pairs(str(tmp_path), '_real', '_mean')
    assert len(err.value.problems) == 2
    assert 'b_real.JPG: no matching clean image' in str(err.value)
    assert 'c_mean.jpg: no matching noisy image' in str(err.value)
    pairs, problems = find_pairs(str(tmp_path), '_real', '_mean', strict=False)
    assert [p[0] for p in pairs] == ['a'] and len(problems) == 2
    with pytest.raises(InputError, match='folder not found'):
        find_pairs(str(tmp_path / 'nope'), '_real', '_mean')


def test_find_pairs_pattern_and_empty_folder(tmp_path):
    png = cv2.imencode('.png', np.zeros((4, 4), np.uint8))[1].tobytes()
    for name in ('0001_NOISY_SRGB_010.PNG', '0001_GT_SRGB_010.PNG', '0001_NOISY_SRGB_011.jpg'):
        (tmp_path / name).write_bytes(png)
    # the .jpg without its clean half is not even looked at: only PNGs are asked for
    assert find_pairs(str(tmp_path), '_NOISY', '_GT', pattern=r'(?i)\.png$') == [
        ('0001_SRGB_010', str(tmp_path / '0001_NOISY_SRGB_010.PNG'), str(tmp_path / '0001_GT_SRGB_010.PNG'))]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(InputError, match=r'empty: no \*_NOISY\* / \*_GT\* image pairs found'):
        find_pairs(str(tmp_path / 'empty'), '_NOISY', '_GT')


def test_list_input_images_missing_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match=r'nope: folder not found'):
        list_input_images(str(tmp_path / 'nope'))
    assert list_input_images(str(tmp_path)) == []
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'a.png').write_bytes(b'x')  # in a subfolder: not an input of this folder
    (tmp_path / 'B.PNG').write_bytes(b'x')
    assert list_input_images(str(tmp_path)) == [str(tmp_path / 'B.PNG')]
    with pytest.raises(InputError) as err:
        require_files([str(tmp_path / 'B.PNG'), str(tmp_path / 'x.png'), str(tmp_path / 'y.mat')])
    assert err.value.problems == [f'{tmp_path / "x.png"}: file not found', f'{tmp_path / "y.mat"}: file not found']


def test_read_input_image_modes(tmp_path):
    bgra = np.random.default_rng(0).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    p = str(tmp_path / 'a.png')
    cv2.imwrite(p, bgra)
    assert read_input_image(p).shape == (6, 7, 3)
    assert np.array_equal(read_input_image(p), bgra[:, :, :3])
    assert read_input_image(p, 'gray').shape == (6, 7)
    p16 = str(tmp_path / 'b.png')
    cv2.imwrite(p16, np.zeros((4, 4), np.uint16))
    with pytest.raises(InputError, match='8-bit'):
        read_input_image(p16)
    (tmp_path / 'c.png').write_bytes(b'\x89PNG truncated')
    with pytest.raises(InputError, match=r'c\.png: unreadable or corrupt image'):
        read_input_image(str(tmp_path / 'c.png'))


def test_keys():
    assert sanitize_key('a b.c-d_1') == 'a_b_c-d_1'
    assert key_problem('a_b-1') is None
    assert 'invalid key' in key_problem('a.b') and 'invalid key' in key_problem('')


def test_load_mat_array_matlab5_and_v73(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    v5 = str(tmp_path / 'v5.mat')
    scipy.io.savemat(v5, {'ValidationNoisyBlocksSrgb': arr})
    out = load_mat_array(v5, 'ValidationNoisyBlocksSrgb')
    assert out.dtype == np.uint8 and np.array_equal(out, arr)
    with pytest.raises(InputError, match="'ValidationGtBlocksSrgb' not found.*ValidationNoisyBlocksSrgb"):
        load_mat_array(v5, 'ValidationGtBlocksSrgb')
    # MATLAB v7.3: HDF5 with a 512-byte MATLAB header; arrays stored column-major (axes reversed)
    v73 = str(tmp_path / 'v73.mat')
    with h5py.File(v73, 'w', userblock_size=512) as f:
        f.create_dataset('ValidationGtBlocksSrgb', data=np.transpose(arr))
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .'
    with open(v73, 'r+b') as f:
        f.write(header.ljust(116) + b'\x00' * 8 + b'\x00\x02' + b'IM')
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(v73)
    assert np.array_equal(load_mat_array(v73, 'ValidationGtBlocksSrgb'), arr)
    with pytest.raises(InputError, match="'x' not found"):
        load_mat_array(v73, 'x')
    junk = tmp_path / 'junk.mat'
    junk.write_bytes(b'nothing to see')
    with pytest.raises(InputError, match='junk.mat: not a readable MATLAB file'):
        load_mat_array(str(junk), 'x')
    with pytest.raises(InputError, match='file not found'):
        load_mat_array(str(tmp_path / 'gone.mat'), 'x')
