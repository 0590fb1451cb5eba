"""CameraNoiseDataset and its camera pipeline: the noiseless round trip, the noise statistics against
the sampled parameters, reproducible validation pairs and one-line option errors."""
import random

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.data import camera_pipeline as cp
from gimsanet_arch.data.camera_noise_dataset import CameraNoiseDataset


def _smooth_image(h=64, w=80, seed=0):
    """A natural-ish colour image: smooth gradients plus texture, values inside (0, 1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.2 + 0.6 * xx, 0.15 + 0.7 * yy, 0.5 + 0.3 * np.sin(6 * xx * yy)], axis=2)
    texture = cv2.GaussianBlur(rng.normal(0, 0.08, (h, w, 3)), (0, 0), 1.5)
    return np.clip(base + texture, 0.02, 0.98)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'clean'
    folder.mkdir()
    for i, (h, w) in enumerate(((64, 80), (72, 56))):
        img = np.rint(_smooth_image(h, w, i) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f'p{i}.png'), img[:, :, ::-1])
    return folder


def _dataset(root, **kw):
    opt = {'name': 'cam', 'phase': 'val', 'dataroot_gt': str(root), 'in_ch': 3}
    opt.update(kw)
    return CameraNoiseDataset(opt)


@pytest.mark.parametrize('seed', range(6))
def test_noiseless_round_trip_is_within_one_level_where_nothing_clips(seed):
    img = _smooth_image(seed=seed)
    camera = cp.sample_camera(np.random.RandomState(seed))
    linear_cam = (np.maximum(cp.inverse_tone(img), cp.EPS) ** cp.GAMMA) @ camera['rgb2cam'].T
    raw = cp.unprocess(img, camera)
    back = cp.process(raw, camera)
    unclipped = np.all((linear_cam / camera['gains'] < 1) & (raw * camera['gains'] < 1), axis=2)
    assert unclipped.mean() > 0.5  # the test looks at most of the image
    err = np.abs(back - img)[unclipped]
    assert err.max() < 1 / 255, err.max()
    # each stage really changes the image: the round trip is not identity by doing nothing
    assert np.abs(raw - img).mean() > 0.05


def test_the_stages_invert_each_other():
    x = np.linspace(0, 1, 101)
    np.testing.assert_allclose(cp.tone(cp.inverse_tone(x)), x, atol=1e-12)
    rgb2cam = cp.sample_rgb2cam(np.random.RandomState(3))
    np.testing.assert_allclose(rgb2cam.sum(axis=1), 1, atol=1e-12)  # white stays white
    assert (rgb2cam > 0).all() and np.all(np.diag(rgb2cam) > 0.5)


def test_raw_noise_at_bayer_sites_has_the_sampled_variance():
    rng = np.random.RandomState(0)
    camera = cp.sample_camera(rng)
    camera.update(shot=4e-3, read=2e-4, bayer_phase=(0, 1))
    levels = np.repeat(np.linspace(0.05, 0.95, 8), 64)[:, None]
    raw = np.repeat(np.tile(levels, (1, 512))[:, :, None], 3, axis=2)  # rows of constant level
    noise = cp.raw_noise(raw, camera, np.random.RandomState(1))
    masks = cp.bayer_masks(*raw.shape[:2], camera['bayer_phase'])
    for level in np.unique(levels):
        rows = np.isclose(raw[:, 0, 0], level)
        at_sites = noise[rows][masks[rows]]
        expected = camera['shot'] * level + camera['read']
        assert abs(at_sites.var() / expected - 1) < 0.05, (level, at_sites.var(), expected)
        assert abs(at_sites.mean()) < 4 * np.sqrt(expected / at_sites.size)
    # interpolated red between two red sites: the mean of two independent draws, half the variance
    red_between = noise[rows][:, :, 0][~masks[rows][:, :, 0]]
    assert red_between.var() < 0.75 * at_sites.var()
    # neighbours are correlated after the demosaick (white noise would give about 0)
    green = noise[:, :, 1]
    corr = np.corrcoef(green[:, :-1].ravel(), green[:, 1:].ravel())[0, 1]
    assert corr > 0.2


def test_sampled_noise_levels_follow_the_log_linear_relation():
    rng = np.random.RandomState(5)
    draws = np.array([cp.sample_noise_levels(rng) for _ in range(4000)])
    log_shot, log_read = np.log(draws[:, 0]), np.log(draws[:, 1])
    assert log_shot.min() >= np.log(cp.SHOT_RANGE[0]) and log_shot.max() <= np.log(cp.SHOT_RANGE[1])
    slope, intercept = np.polyfit(log_shot, log_read, 1)
    assert abs(slope - cp.READ_SLOPE) < 0.03 and abs(intercept - cp.READ_INTERCEPT) < 0.25
    residual = log_read - (slope * log_shot + intercept)
    assert abs(residual.std() - cp.READ_SCATTER) < 0.02


def test_noise_grows_with_the_sampled_shot_level(photos):
    """Through the whole dataset: a tenfold shot level gives clearly more noise in sRGB."""
    low = _dataset(photos, shot_range=[1e-4, 1e-4], jpeg_prob=0, quantize=False)[0]
    high = _dataset(photos, shot_range=[1e-2, 1e-2], jpeg_prob=0, quantize=False)[0]
    assert torch.equal(low['gt'], high['gt'])  # same camera draws: the same clean target
    assert float(high['noise_std']) > 3 * float(low['noise_std']) > 0


def test_pairs_differ_only_by_the_noise(photos):
    """With the noise levels at ~0 and no JPEG/quantisation, the noisy image equals the target."""
    ds = _dataset(photos, shot_range=[1e-12, 1e-12], read_noise_fit=[1.0, 0.0, 0.0], jpeg_prob=0, quantize=False)
    sample = ds[1]
    np.testing.assert_allclose(sample['lq'].numpy(), sample['gt'].numpy(), atol=1e-4)
    img = cv2.imread(str(photos / 'p1.png'))[:, :, ::-1].transpose(2, 0, 1) / 255.
    assert np.abs(sample['gt'].numpy() - img).mean() < 2 / 255  # the target is the photo, developed back


def test_validation_pairs_are_seeded_per_image(photos):
    first = _dataset(photos)
    np.random.seed(7)
    a0, a1 = first[0], first[1]
    np.random.seed(99)
    again = _dataset(photos)[0]
    assert torch.equal(a0['lq'], again['lq']) and torch.equal(a0['gt'], again['gt'])
    other_seed = _dataset(photos, noise_seed=1)[0]
    assert not torch.equal(a0['lq'], other_seed['lq'])
    assert float(a0['noise_std']) != float(a1['noise_std'])  # each image has its own camera
    # quantised to 8 bits
    levels = a0['lq'].numpy() * 255
    np.testing.assert_allclose(levels, np.rint(levels), atol=1e-3)


def test_training_patches_follow_the_global_generator(photos):
    ds = _dataset(photos, phase='train', gt_size=32, use_hflip=True, use_rot=True)
    np.random.seed(3)
    random.seed(3)  # BasicSR's flips and rotations draw from Python's generator
    a = ds[0]
    np.random.seed(3)
    random.seed(3)
    b = ds[0]
    c = ds[0]
    assert a['lq'].shape == a['gt'].shape == (3, 32, 32)
    assert torch.equal(a['lq'], b['lq']) and not torch.equal(a['lq'], c['lq'])


def test_srgb_ablation_noise_is_independent_and_signal_dependent():
    rng = np.random.RandomState(0)
    clean = np.concatenate([np.full((128, 256, 3), 0.1), np.full((128, 256, 3), 0.8)])
    noisy, target = cp.srgb_pair(clean, 1e-2, 1e-4, rng)
    dark, bright = (noisy - target)[:128], (noisy - target)[128:]
    assert abs(dark.var() / (1e-2 * 0.1 + 1e-4) - 1) < 0.05
    assert abs(bright.var() / (1e-2 * 0.8 + 1e-4) - 1) < 0.05
    corr = np.corrcoef(bright[:, :-1, 1].ravel(), bright[:, 1:, 1].ravel())[0, 1]
    assert abs(corr) < 0.03


def test_jpeg_compresses_the_noisy_input(photos):
    plain = _dataset(photos, jpeg_prob=0)[0]
    jpeg = _dataset(photos, jpeg_prob=1, jpeg_quality=[30, 30])[0]
    assert torch.equal(plain['gt'], jpeg['gt'])
    assert not torch.equal(plain['lq'], jpeg['lq'])


@pytest.mark.parametrize('key, value, message', [
    ('noise_model', 'poisson', r'noise_model must be one of'),
    ('shot_range', [1e-2, 1e-4], r'shot_range: needs'),
    ('shot_range', 'abc', r'shot_range: expected \[low, high\]'),
    ('ccm_strength', [0.2, 0.6], r'ccm_strength: needs'),
    ('jpeg_prob', 1.5, r'jpeg_prob must be in \[0, 1\]'),
    ('jpeg_quality', [50, 120], r'jpeg_quality: needs'),
    ('jpeg_quality', [50.5, 90], r'jpeg_quality: expected whole numbers'),
    ('read_noise_fit', [1, 2], r'read_noise_fit: expected \[slope, intercept, scatter'),
    ('in_ch', 1, r'in_ch must be 3'),
])
def test_bad_options_are_one_line_naming_the_key(photos, key, value, message):
    with pytest.raises(ValueError, match=message) as info:
        _dataset(photos, **{key: value})
    assert 'datasets.cam' in str(info.value) and '\n' not in str(info.value)
