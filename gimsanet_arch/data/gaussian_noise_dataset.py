"""Synthetic AWGN denoising dataset: clean images in, (noisy, clean) pairs out."""
import math
import numbers

import numpy as np
import torch

from basicsr.utils.registry import DATASET_REGISTRY
from gimsanet_arch.data.clean_images import CleanImageDataset

SIGMA_TYPES = ('constant', 'random', 'choice')


def _is_number(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def sigma_range_problem(sigma_type, sigma_range):
    """What makes a training noise setting meaningless (None when it is usable): sigmas are noise
    standard deviations on the 0-255 scale, so negative ones, a reversed ``[high, low]`` range or
    text would otherwise train on noise nobody asked for (``[50, 5]`` drew sigmas in [5, 50])."""
    values = list(sigma_range) if isinstance(sigma_range, (list, tuple, np.ndarray)) else [sigma_range]
    if sigma_type == 'constant':
        if len(values) != 1 or not _is_number(values[0]) or values[0] < 0:
            return f'a constant sigma must be a number >= 0, got {sigma_range!r}'
    elif sigma_type == 'random':
        if len(values) != 2 or not all(_is_number(v) for v in values) or not 0 <= values[0] <= values[1]:
            return f'expected [low, high] with 0 <= low <= high, got {sigma_range!r}'
    elif sigma_type == 'choice':
        if not values or not all(_is_number(v) and v >= 0 for v in values):
            return f'expected a list of sigmas >= 0 to choose from, got {sigma_range!r}'
    return None


def seeded_test_noise(shape, sigma, seed=0):
    """The evaluation noise of docs/evaluation.md: numpy's generator reset to ``seed`` for every
    image, then ``normal(0, sigma/255, shape)`` in float64 (identical numbers to
    ``np.random.seed(0); np.random.normal(...)`` without touching the global generator)."""
    return np.random.RandomState(seed).normal(0, sigma / 255., shape)


def add_test_noise(img, sigma, seed=0, channel_order='rgb'):
    """Add the reproducible test noise to an HxWxC float image given in ``channel_order``.

    ``channel_order`` says in which layout the noise array is drawn: 'rgb' (Restormer) or 'bgr'
    (SwinIR/KAIR and the official GIMSANet script); the two differ only by a channel flip.
    """
    noise = seeded_test_noise(img.shape, sigma, seed)
    if channel_order == 'bgr' and img.shape[2] == 3:
        noise = noise[:, :, ::-1]
    return (img.astype(np.float64) + noise).astype(np.float32)


def keras_rotate(img, theta):
    """Rotate an HxWxC float image by ``theta`` degrees the way Keras' ``ImageDataGenerator``
    (``rotation_range``) does: ``scipy.ndimage.affine_transform`` per channel, bilinear
    (``order=1``), ``mode='nearest'`` (edge replicate), about the true pixel centre.

    This is Keras 2.9-2.15 ``keras/preprocessing/image.py`` (and Keras 3's legacy copy):
    ``transform_matrix_offset_center`` uses ``o = size / 2 - 0.5`` and, for channels-last
    images (``col_axis > row_axis``), the matrix is conjugated by the x/y swap, so in (row, col)
    coordinates input = [[cos, sin], [-sin, cos]] @ (output - c) + c with c = (W/2 - 0.5,
    H/2 - 0.5) (Keras' swapped centre, the same for the square training patches). A positive
    theta of 90 equals ``np.rot90(img, 1)``. keras_preprocessing <= 1.1.2 (TF <= 2.8) centred
    at ``size / 2 + 0.5`` instead (one pixel off) and did not swap; that variant is not
    reproduced. The output keeps the input dtype (float32 in Keras as well).
    """
    from scipy import ndimage
    if theta == 0:  # Keras skips the transform for theta == 0
        return img
    h, w = img.shape[:2]
    rad = np.deg2rad(theta)
    cos, sin = np.cos(rad), np.sin(rad)
    matrix = np.array([[cos, sin], [-sin, cos]])
    centre = np.array([w / 2 - 0.5, h / 2 - 0.5])
    offset = centre - matrix @ centre
    channels = [ndimage.affine_transform(img[:, :, c], matrix, offset, order=1, mode='nearest', cval=0.)
                for c in range(img.shape[2])]
    return np.stack(channels, axis=2)


@DATASET_REGISTRY.register()
class GaussianNoiseDataset(CleanImageDataset):
    """Clean images + additive white Gaussian noise, for blind or non-blind AWGN denoising.

    Options (BasicSR spelling where BasicSR has one):
        dataroot_gt (str): folder of clean images, or a BasicSR LMDB (``io_backend.type: lmdb``).
        meta_info_file (str, optional): list of images to use (BasicSR meta_info format).
        io_backend.type: ``disk`` | ``lmdb``.
        in_ch (int): 1 (gray; colour files are converted) or 3 (RGB). Default 3.
        Training (``phase: train``):
            sigma_type: ``constant`` | ``random`` (uniform in ``sigma_range``) | ``choice``
                (one of the values in ``sigma_range``). Default ``random``.
            sigma_range: ``[lo, hi]`` (random), a list (choice) or a number (constant). 0-255 scale.
            sigma_integer (bool): draw integer sigmas (the official GIMSANet recipe draws 1..61).
            gt_size (int): random crop size; pad_small (bool): reflect-pad smaller images instead
                of failing.
            use_hflip, use_rot (bool): the eight flips/rotations.
            rotation_range (float): Keras ``ImageDataGenerator(rotation_range=...)``. After the
                crop and flips, rotate the clean patch by theta ~ U(-rotation_range,
                rotation_range) degrees about its centre, bilinear, edge-replicate fill (see
                ``keras_rotate``); the noise is added afterwards, so ``gt`` is the rotated
                (slightly blurred) patch and ``lq - gt`` is pure noise. The official GIMSANet
                recipe uses 30. Default 0: off, no random number drawn (samples unchanged).
            clip_noisy (bool): clip the noisy input to [0, 1]. Default False (as published).
            cache_images (bool): keep every decoded image in memory after its first read (in each
                process that reads it), so a small training set of whole images (BSD400, CBSD432:
                about 20 / 190 MB) is decoded once instead of once per patch; decoding a whole
                481x321 PNG per patch costs about 15 % of a GIMSANet iteration on a CPU.
                Same samples as without it. Default False.
        Validation/test (``phase: val`` / ``test``):
            sigma_test (float): noise level; noise_seed (int, default 0) and noise_channel_order
            (``rgb`` default, or ``bgr`` for the SwinIR/official GIMSANet layout).

    Returns dict with ``lq``, ``gt`` (CxHxW float32, RGB), ``lq_path``, ``gt_path``, ``sigma``.
    """

    # the options this class reads beyond BasicSR's dataset keys (checked up front by basicsr train)
    OPTIONS = {
        'sigma_type': 'constant | random (uniform in sigma_range) | choice (one of sigma_range)',
        'sigma_range': '[lo, hi] (random), a list (choice) or a number (constant), 0-255 scale',
        'sigma_integer': 'draw integer sigmas (the official GIMSANet recipe draws 1..61)',
        'rotation_range': 'Keras-style random rotation of the clean patch, in degrees (0: off)',
        'clip_noisy': 'clip the noisy input to [0, 1]',
        'sigma_test': 'validation/test noise level, 0-255 scale',
        'noise_seed': 'seed of the reproducible validation/test noise (default 0)',
        'noise_channel_order': 'rgb (default) or bgr: the layout the test noise is drawn in',
    }

    def __init__(self, opt):
        super().__init__(opt)
        if self.is_train:
            self.sigma_type = opt.get('sigma_type', 'random')
            if self.sigma_type not in SIGMA_TYPES:
                raise ValueError(f'sigma_type must be one of {SIGMA_TYPES}, got {self.sigma_type}')
            sigma_range = opt.get('sigma_range', [0, 50])
            problem = sigma_range_problem(self.sigma_type, sigma_range)
            if problem:
                raise ValueError(f'datasets.{opt.get("name")}: sigma_range: {problem}')
            self.sigma_range = [float(s) for s in np.atleast_1d(sigma_range)]
            self.rotation_range = float(opt.get('rotation_range', 0) or 0)
            if not np.isfinite(self.rotation_range) or self.rotation_range < 0:
                raise ValueError(f'datasets.{opt.get("name")}: rotation_range must be >= 0 degrees, '
                                 f'got {opt.get("rotation_range")}')
        else:
            if opt.get('sigma_test') is None:
                raise ValueError(f'datasets.{opt.get("name")}: sigma_test is required for validation/test')
            self.sigma_test = float(opt['sigma_test'])

    def _draw_sigma(self):
        lo = self.sigma_range[0]
        if self.sigma_type == 'constant':
            sigma = lo
        elif self.sigma_type == 'choice':
            sigma = float(np.random.choice(self.sigma_range))
        elif self.opt.get('sigma_integer', False):
            sigma = float(np.random.randint(int(lo), int(self.sigma_range[1]) + 1))
        else:
            sigma = float(np.random.uniform(lo, self.sigma_range[1]))
        return sigma

    def __getitem__(self, index):
        path = self.paths[index]
        img_gt = self._read(index)
        if self.is_train:
            img_gt = self._train_patch(img_gt, path)
            if self.rotation_range:
                theta = np.random.uniform(-self.rotation_range, self.rotation_range)  # as Keras draws it
                img_gt = keras_rotate(img_gt, theta)
            sigma = self._draw_sigma()
            noise = np.random.standard_normal(img_gt.shape).astype(np.float32) * np.float32(sigma / 255.)
            img_lq = img_gt + noise
        else:
            sigma = self.sigma_test
            img_lq = add_test_noise(img_gt, sigma, int(self.opt.get('noise_seed', 0)),
                                    self.opt.get('noise_channel_order', 'rgb'))
        if self.opt.get('clip_noisy', False):
            img_lq = np.clip(img_lq, 0, 1)
        gt = torch.from_numpy(np.ascontiguousarray(img_gt.transpose(2, 0, 1))).float()
        lq = torch.from_numpy(np.ascontiguousarray(img_lq.transpose(2, 0, 1))).float()
        return {'lq': lq, 'gt': gt, 'lq_path': path, 'gt_path': path, 'sigma': torch.tensor(sigma / 1.)}
