"""GaussianNoiseDataset: reading, noise protocol (docs/evaluation.md), augmentation and errors."""
import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.data.gaussian_noise_dataset import GaussianNoiseDataset, add_test_noise
from gimsanet_prep.images import ImageReadError


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    color, gray = tmp_path / 'color', tmp_path / 'gray'
    color.mkdir()
    gray.mkdir()
    imgs = {}
    for name, (h, w) in (('a', (20, 26)), ('b', (24, 24))):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(color / f'{name}.png'), img)
        cv2.imwrite(str(gray / f'{name}.png'), img[:, :, 0])
        imgs[name] = img
    return tmp_path, imgs


def _val(root, **kw):
    return GaussianNoiseDataset(dict({'name': 'v', 'phase': 'val', 'dataroot_gt': str(root), 'sigma_test': 25,
                                      'in_ch': 3}, **kw))


def test_validation_noise_matches_the_published_protocol(folders):
    root, imgs = folders
    sample = _val(root / 'color')[0]
    rgb = imgs['a'][:, :, ::-1].astype(np.float32) / 255.
    np.random.seed(0)  # the protocol: reset numpy's global generator per image, then draw
    expected = (rgb + np.random.normal(0, 25 / 255., rgb.shape)).astype(np.float32)
    got = sample['lq'].numpy().transpose(1, 2, 0)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(sample['gt'].numpy().transpose(1, 2, 0), rgb)
    assert float(sample['sigma']) == 25 and sample['lq_path'].endswith('a.png')
    # reproducible: the same image gives the same noise every time, whatever came before
    np.random.seed(123)
    assert torch.equal(_val(root / 'color')[0]['lq'], sample['lq'])
    assert got.max() > 1 or got.min() < 0  # not clipped


def test_bgr_noise_layout_is_the_channel_flip(folders):
    root, _ = folders
    rgb_noise = _val(root / 'color')[0]
    bgr_noise = _val(root / 'color', noise_channel_order='bgr')[0]
    n_rgb = (rgb_noise['lq'] - rgb_noise['gt']).numpy()
    n_bgr = (bgr_noise['lq'] - bgr_noise['gt']).numpy()
    np.testing.assert_allclose(n_bgr, n_rgb[::-1], atol=1e-6)


def test_gray_reads_single_channel_and_converts_colour(folders):
    root, imgs = folders
    gray = _val(root / 'gray', in_ch=1)[0]
    assert gray['gt'].shape == (1, 20, 26)
    np.testing.assert_allclose(gray['gt'][0].numpy(), imgs['a'][:, :, 0] / 255., atol=1e-6)
    np.random.seed(0)
    expected = imgs['a'][:, :, 0:1] / 255. + np.random.normal(0, 25 / 255., (20, 26, 1))
    np.testing.assert_allclose(gray['lq'][0].numpy(), expected[:, :, 0], atol=1e-6)
    converted = _val(root / 'color', in_ch=1)[0]
    assert converted['gt'].shape == (1, 20, 26)


def test_gray_file_for_colour_dataset_is_a_clear_error(folders):
    root, _ = folders
    with pytest.raises(ImageReadError, match=r'1 channel.*in_ch is 3.*a\.png'):
        _val(root / 'gray')[0]


def test_lmdb_backend_gives_the_same_samples(folders, tmp_path):
    from tiny_data import write_lmdb_from_folder
    root, _ = folders
    lmdb_path = write_lmdb_from_folder(str(root / 'color'), str(tmp_path / 'c.lmdb'))
    from_lmdb = _val(lmdb_path, io_backend={'type': 'lmdb'})
    from_disk = _val(root / 'color')
    assert len(from_lmdb) == len(from_disk) == 2
    for i in range(2):
        assert torch.equal(from_lmdb[i]['lq'], from_disk[i]['lq'])
        assert torch.equal(from_lmdb[i]['gt'], from_disk[i]['gt'])


def test_missing_lmdb_key_is_named(folders, tmp_path):
    from tiny_data import write_lmdb_from_folder
    root, _ = folders
    lmdb_path = write_lmdb_from_folder(str(root / 'color'), str(tmp_path / 'c.lmdb'))
    meta = tmp_path / 'meta.txt'
    meta.write_text('a.png (20,26,3) 1\nzzz.png (24,24,3) 1\n')
    ds = _val(lmdb_path, io_backend={'type': 'lmdb'}, meta_info_file=str(meta))
    with pytest.raises(ImageReadError, match='key "zzz" not found'):
        ds[1]


def test_training_crops_sigma_types_and_augment(folders):
    root, _ = folders
    opt = {'name': 't', 'phase': 'train', 'dataroot_gt': str(root / 'color'), 'in_ch': 3, 'gt_size': 16,
           'use_hflip': True, 'use_rot': True}
    np.random.seed(1)
    random_ds = GaussianNoiseDataset(dict(opt, sigma_type='random', sigma_range=[10, 20]))
    sigmas = [float(random_ds[i % 2]['sigma']) for i in range(20)]
    assert all(10 <= s <= 20 for s in sigmas) and len(set(sigmas)) > 10
    ints = GaussianNoiseDataset(dict(opt, sigma_type='random', sigma_range=[1, 3], sigma_integer=True))
    assert {float(ints[0]['sigma']) for _ in range(40)} == {1., 2., 3.}
    choice = GaussianNoiseDataset(dict(opt, sigma_type='choice', sigma_range=[15, 25, 50]))
    assert {float(choice[0]['sigma']) for _ in range(60)} == {15., 25., 50.}
    const = GaussianNoiseDataset(dict(opt, sigma_type='constant', sigma_range=30))
    sample = const[1]
    assert sample['lq'].shape == sample['gt'].shape == (3, 16, 16) and float(sample['sigma']) == 30
    noise = (sample['lq'] - sample['gt']).numpy()
    assert 0.7 * 30 / 255 < noise.std() < 1.3 * 30 / 255
    clipped = GaussianNoiseDataset(dict(opt, sigma_type='constant', sigma_range=80, clip_noisy=True))[0]['lq']
    assert clipped.min() >= 0 and clipped.max() <= 1


@pytest.mark.parametrize('sigma_type, sigma_range, problem', [
    ('random', [50, 5], 'expected [low, high] with 0 <= low <= high, got [50, 5]'),
    ('random', [-20, 10], 'expected [low, high] with 0 <= low <= high, got [-20, 10]'),
    ('random', [10, 'abc'], "expected [low, high] with 0 <= low <= high, got [10, 'abc']"),
    ('constant', -5, 'a constant sigma must be a number >= 0, got -5'),
    ('constant', [10, 20], 'a constant sigma must be a number >= 0, got [10, 20]'),
    ('choice', [15, -25], 'expected a list of sigmas >= 0 to choose from, got [15, -25]'),
    ('choice', [], 'expected a list of sigmas >= 0 to choose from, got []'),
])
def test_meaningless_training_noise_is_refused_naming_the_option(folders, sigma_type, sigma_range, problem):
    """A negative sigma or a reversed range drew noise nobody asked for, silently."""
    root, _ = folders
    opt = {'name': 't', 'phase': 'train', 'dataroot_gt': str(root / 'color'), 'in_ch': 3, 'gt_size': 16,
           'sigma_type': sigma_type, 'sigma_range': sigma_range}
    with pytest.raises(ValueError) as err:
        GaussianNoiseDataset(opt)
    assert str(err.value) == f'datasets.t: sigma_range: {problem}'


def test_image_smaller_than_gt_size(folders):
    root, _ = folders
    opt = {'name': 't', 'phase': 'train', 'dataroot_gt': str(root / 'color'), 'in_ch': 3, 'gt_size': 25,
           'sigma_type': 'constant', 'sigma_range': 10}
    with pytest.raises(ImageReadError, match=r'a\.png is 20x26, smaller than gt_size 25'):
        GaussianNoiseDataset(opt)[0]
    padded = GaussianNoiseDataset(dict(opt, pad_small=True))[0]
    assert padded['gt'].shape == (3, 25, 25)


def test_corrupt_and_empty_inputs(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ImageReadError, match='no images'):
        _val(empty)
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'x.png').write_bytes(b'\x89PNG not really')
    with pytest.raises(ImageReadError, match=r'corrupt or unreadable image: .*x\.png'):
        _val(bad)[0]


def test_add_test_noise_helper():
    img = np.zeros((4, 5, 3), np.float32)
    np.random.seed(0)
    expected = np.random.normal(0, 15 / 255., (4, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(add_test_noise(img, 15), expected)


def test_one_lmdb_shared_by_several_datasets(folders, tmp_path):
    from tiny_data import write_lmdb_from_folder
    root, _ = folders
    lmdb_path = write_lmdb_from_folder(str(root / 'color'), str(tmp_path / 'shared.lmdb'))
    sets = [_val(lmdb_path, io_backend={'type': 'lmdb'}, sigma_test=s) for s in (15, 25, 50)]
    stds = [float((d[0]['lq'] - d[0]['gt']).std()) * 255 for d in sets]
    assert stds[0] < stds[1] < stds[2]


def test_lmdb_read_in_parent_then_in_dataloader_workers(folders, tmp_path):
    """py-lmdb refuses in a forked worker a path the parent still holds open (the up-front data
    check reads the first sample in the parent)."""
    from tiny_data import write_lmdb_from_folder
    root, _ = folders
    ds = _val(write_lmdb_from_folder(str(root / 'color'), str(tmp_path / 'w.lmdb')), io_backend={'type': 'lmdb'})
    first = ds[0]['lq']
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1,
                                         multiprocessing_context='fork')
    batches = list(loader)
    assert len(batches) == 2 and torch.equal(batches[0]['lq'][0], first)
    assert torch.equal(ds[1]['gt'], batches[1]['gt'][0])  # the parent reads again after the fork


# ----------------------------------------------------------------------------- rotation_range (Keras)
def _keras_apply_rotation(x, theta):
    """Keras 2.9-2.15 ``keras/preprocessing/image.py`` ``apply_affine_transform(x, theta)`` for a
    channels-last image (row_axis=0, col_axis=1, channel_axis=2), transcribed literally:
    rotation matrix, ``transform_matrix_offset_center`` (o = size/2 - 0.5), the x/y swap, then
    scipy.ndimage.affine_transform per channel with order=1, mode='nearest', cval=0."""
    from scipy import ndimage
    row_axis, col_axis, channel_axis = 0, 1, 2
    theta = np.deg2rad(theta)
    transform_matrix = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    h, w = x.shape[row_axis], x.shape[col_axis]
    o_x, o_y = float(h) / 2 - 0.5, float(w) / 2 - 0.5
    offset_matrix = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset_matrix = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    transform_matrix = np.dot(np.dot(offset_matrix, transform_matrix), reset_matrix)
    x = np.rollaxis(x, channel_axis, 0)
    if col_axis > row_axis:
        transform_matrix[:, [0, 1]] = transform_matrix[:, [1, 0]]
        transform_matrix[[0, 1]] = transform_matrix[[1, 0]]
    channel_images = [ndimage.affine_transform(x_channel, transform_matrix[:2, :2], transform_matrix[:2, 2], order=1,
                                               mode='nearest', cval=0.) for x_channel in x]
    x = np.stack(channel_images, axis=0)
    return np.rollaxis(x, 0, channel_axis + 1)


@pytest.mark.parametrize('channels', [3, 1])
def test_keras_rotate_matches_keras_apply_affine_transform(channels):
    from gimsanet_arch.data.gaussian_noise_dataset import keras_rotate
    patch = np.random.default_rng(3).random((30, 30, channels), dtype=np.float32)
    for theta in (-30., -17.3, -0.4, 1e-3, 7.5, 22.2, 30.):
        got = keras_rotate(patch, theta)
        assert got.shape == patch.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, _keras_apply_rotation(patch, theta), rtol=0, atol=1e-6)
    assert keras_rotate(patch, 0.) is patch  # Keras skips theta == 0
    rect = np.random.default_rng(4).random((12, 17, channels), dtype=np.float32)  # Keras swaps the centre
    np.testing.assert_allclose(keras_rotate(rect, 13.), _keras_apply_rotation(rect, 13.), rtol=0, atol=1e-6)


def test_keras_rotate_is_about_the_true_centre():
    """With the centre at size/2 - 0.5 a quarter turn maps the pixel grid onto itself (the older
    keras_preprocessing centre, size/2 + 0.5, would shift it by a pixel); +90 degrees is np.rot90."""
    from gimsanet_arch.data.gaussian_noise_dataset import keras_rotate
    patch = np.random.default_rng(5).random((30, 30, 3), dtype=np.float32)
    np.testing.assert_allclose(keras_rotate(patch, 90.), np.rot90(patch, 1), atol=1e-6)
    np.testing.assert_allclose(keras_rotate(patch, -90.), np.rot90(patch, -1), atol=1e-6)
    flat = np.full((30, 30, 1), 0.25, np.float32)  # nearest fill: a constant patch stays constant
    np.testing.assert_allclose(keras_rotate(flat, 30.), flat, atol=1e-7)


def _train_opt(root, **kw):
    return dict({'name': 't', 'phase': 'train', 'dataroot_gt': str(root), 'in_ch': 3, 'gt_size': 16,
                 'sigma_type': 'constant', 'sigma_range': 25}, **kw)


@pytest.mark.parametrize('in_ch', [3, 1])
def test_rotation_range_rotates_the_clean_crop_then_adds_noise(folders, in_ch):
    from gimsanet_arch.data.gaussian_noise_dataset import keras_rotate
    root, imgs = folders
    sub = 'color' if in_ch == 3 else 'gray'
    ds = GaussianNoiseDataset(_train_opt(root / sub, in_ch=in_ch, rotation_range=30))
    full = imgs['a'][:, :, ::-1] if in_ch == 3 else imgs['a'][:, :, :1]
    full = full.astype(np.float32) / 255.
    for seed in range(5):
        np.random.seed(seed)
        sample = ds[0]
        # replay the draws: crop position, then theta (Keras: uniform(-r, r)), then the noise
        np.random.seed(seed)
        top, left = np.random.randint(0, 20 - 16 + 1), np.random.randint(0, 26 - 16 + 1)
        theta = np.random.uniform(-30, 30)
        assert -30 <= theta <= 30
        noise = np.random.standard_normal((16, 16, in_ch)).astype(np.float32) * np.float32(25 / 255.)
        crop = np.ascontiguousarray(full[top:top + 16, left:left + 16])
        expected_gt = keras_rotate(crop, theta)
        gt = sample['gt'].numpy().transpose(1, 2, 0)
        assert gt.shape == (16, 16, in_ch)
        np.testing.assert_allclose(gt, expected_gt, rtol=0, atol=1e-6)
        np.testing.assert_allclose(gt, _keras_apply_rotation(crop, theta), rtol=0, atol=1e-6)
        assert not np.allclose(gt, crop, atol=1e-3)  # it did rotate
        # the noise comes after the rotation: lq - gt is exactly the drawn (unrotated) noise
        np.testing.assert_allclose((sample['lq'] - sample['gt']).numpy().transpose(1, 2, 0), noise, rtol=0, atol=1e-6)


def test_rotation_angles_stay_in_range(folders, monkeypatch):
    import gimsanet_arch.data.gaussian_noise_dataset as module
    root, _ = folders
    angles = []
    original = module.keras_rotate
    monkeypatch.setattr(module, 'keras_rotate', lambda img, theta: angles.append(theta) or original(img, theta))
    ds = GaussianNoiseDataset(_train_opt(root / 'color', rotation_range=12.5, use_hflip=True, use_rot=True))
    np.random.seed(0)
    for i in range(200):
        ds[i % 2]
    assert len(angles) == 200 and all(-12.5 <= a <= 12.5 for a in angles)
    assert min(angles) < -10 and max(angles) > 10  # spread over the whole range


def test_rotation_range_zero_changes_nothing(folders):
    root, imgs = folders
    opt = _train_opt(root / 'color', sigma_type='random', sigma_range=[1, 61], sigma_integer=True,
                     use_hflip=True, use_rot=True)
    import random
    samples = []
    for extra in ({}, {'rotation_range': 0}, {'rotation_range': None}):
        np.random.seed(7)
        random.seed(7)
        ds = GaussianNoiseDataset(dict(opt, **extra))
        samples.append([ds[i % 2] for i in range(6)])
    for a, b in zip(samples[0], samples[1] + samples[2]):
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])
        assert float(a['sigma']) == float(b['sigma'])
    # and the clean target is the bare crop, not resampled
    np.random.seed(3)
    gt = GaussianNoiseDataset(_train_opt(root / 'color', rotation_range=0))[0]['gt'].numpy().transpose(1, 2, 0)
    np.random.seed(3)
    top, left = np.random.randint(0, 5), np.random.randint(0, 11)
    np.testing.assert_array_equal(gt, imgs['a'][top:top + 16, left:left + 16, ::-1].astype(np.float32) / 255.)


def test_rotation_range_only_in_training_and_validated(folders):
    root, _ = folders
    with pytest.raises(ValueError, match='rotation_range must be >= 0'):
        GaussianNoiseDataset(_train_opt(root / 'color', rotation_range=-5))
    val = _val(root / 'color', rotation_range=30)[0]
    assert torch.equal(val['gt'], _val(root / 'color')[0]['gt'])
