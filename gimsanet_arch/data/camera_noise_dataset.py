"""Real-camera-like noise from clean sRGB images, for training real-noise denoisers without SIDD."""
import numpy as np
import torch

from basicsr.utils.registry import DATASET_REGISTRY
from gimsanet_arch.data import camera_pipeline as cp
from gimsanet_arch.data.clean_images import CleanImageDataset

NOISE_MODELS = ('camera', 'srgb')


def _pair_option(opt, key, default, low, high=None, integer=False):
    """``[lo, hi]`` option with ``low <= lo <= hi (<= high)``, or one line naming the key."""
    value = opt.get(key, default)
    name = f'datasets.{opt.get("name")}.{key}'
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'{name}: expected [low, high], got {value!r}') from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < low or hi < lo or (high is not None and hi > high):
        bound = f'{low} <= low <= high' + (f' <= {high}' if high is not None else '')
        raise ValueError(f'{name}: needs {bound}, got {value!r}')
    if integer and (lo != int(lo) or hi != int(hi)):
        raise ValueError(f'{name}: expected whole numbers, got {value!r}')
    return lo, hi


@DATASET_REGISTRY.register()
class CameraNoiseDataset(CleanImageDataset):
    """Clean sRGB images in, (noisy, clean) pairs with camera-like noise out.

    ``noise_model: camera`` (default) is the unprocessing pipeline of ``camera_pipeline``: the clean
    patch is taken back to linear raw (inverse tone curve, inverse gamma, a random inverse colour
    matrix, inverse white balance and brightness), heteroscedastic shot + read noise is drawn on the
    Bayer sites and demosaicked, and the result is developed back to sRGB. The target is the same
    raw developed without noise. ``noise_model: srgb`` is the simpler ablation: Gaussian noise of
    variance ``shot * x + read`` added in sRGB, independent per pixel and channel. Both then quantise
    the noisy image to 8 bits and, with probability ``jpeg_prob``, JPEG-compress it.

    Options (besides ``dataroot_gt``, ``io_backend``, ``meta_info_file``, ``gt_size``, ``use_hflip``,
    ``use_rot``, ``cache_images``, ``pad_small`` as in GaussianNoiseDataset; colour images only):
        noise_model: ``camera`` | ``srgb``.
        shot_range: ``[lo, hi]`` of the shot-noise level, drawn log-uniformly per image
            (default ``[1e-4, 1.2e-2]``, Brooks et al. 2019).
        read_noise_fit: ``[slope, intercept, scatter]``: log(read) = slope * log(shot) + intercept +
            N(0, scatter) (default ``[2.18, 1.20, 0.26]``, the paper's fit).
        ccm_strength: ``[lo, hi]`` of the colour matrix's desaturation strength (default
            ``[0.15, 0.45]``; below 0.5 the matrix is always invertible).
        jpeg_prob: probability of JPEG compression (default 0.7); jpeg_quality: ``[lo, hi]``
            (default ``[60, 98]``, uniform integers).
        quantize: round the noisy image to 8 bits, as a saved photo is (default true).
        noise_seed: validation/test only: image ``i`` draws its camera and noise from
            ``RandomState([noise_seed, i])``, so validation pairs are the same in every run.

    Returns ``lq``, ``gt`` (3xHxW float32, RGB), ``lq_path``, ``gt_path`` and ``noise_std``: the RMS of
    ``lq - gt`` on the 0-255 scale (the "true noise level" of the image).
    """

    OPTIONS = {
        'noise_model': 'camera (unprocessing pipeline, default) | srgb (heteroscedastic Gaussian in sRGB)',
        'shot_range': '[lo, hi] of the shot-noise level, log-uniform per image',
        'read_noise_fit': '[slope, intercept, scatter] of log(read) against log(shot)',
        'ccm_strength': '[lo, hi] of the random colour matrix desaturation strength (< 0.5)',
        'jpeg_prob': 'probability of JPEG-compressing the noisy image',
        'jpeg_quality': '[lo, hi] JPEG quality, uniform integers',
        'quantize': 'round the noisy image to 8 bits (default true)',
        'noise_seed': 'seed of the reproducible validation/test noise (default 0)',
    }

    def __init__(self, opt):
        super().__init__(opt)
        name = f'datasets.{opt.get("name")}'
        if self.in_ch != 3:
            raise ValueError(f'{name}.in_ch: CameraNoiseDataset develops colour photos, so in_ch must be 3, '
                             f'got {self.in_ch}')
        self.noise_model = opt.get('noise_model', 'camera')
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f'{name}.noise_model must be one of {NOISE_MODELS}, got {self.noise_model!r}')
        self.shot_range = _pair_option(opt, 'shot_range', cp.SHOT_RANGE, 1e-12)
        fit = opt.get('read_noise_fit', [cp.READ_SLOPE, cp.READ_INTERCEPT, cp.READ_SCATTER])
        try:
            self.read_fit = tuple(float(v) for v in fit)
        except (TypeError, ValueError):
            self.read_fit = ()
        if len(self.read_fit) != 3 or not all(np.isfinite(self.read_fit)) or self.read_fit[2] < 0:
            raise ValueError(f'{name}.read_noise_fit: expected [slope, intercept, scatter >= 0], got {fit!r}')
        self.ccm_strength = _pair_option(opt, 'ccm_strength', (0.15, 0.45), 0.0, 0.499)
        self.jpeg_prob = float(opt.get('jpeg_prob', 0.7))
        if not 0 <= self.jpeg_prob <= 1:
            raise ValueError(f'{name}.jpeg_prob must be in [0, 1], got {opt.get("jpeg_prob")!r}')
        self.jpeg_quality = _pair_option(opt, 'jpeg_quality', (60, 98), 1, 100, integer=True)
        self.quantize = bool(opt.get('quantize', True))
        self.noise_seed = int(opt.get('noise_seed', 0))

    def _camera(self, rng):
        slope, intercept, scatter = self.read_fit
        return cp.sample_camera(rng, self.shot_range, slope, intercept, scatter, self.ccm_strength)

    def make_pair(self, clean, rng):
        """``(noisy, clean)`` float32 RGB images from one clean RGB image, all draws from ``rng``."""
        camera = self._camera(rng)
        if self.noise_model == 'camera':
            noisy, target = cp.camera_pair(clean, camera, rng)
        else:
            noisy, target = cp.srgb_pair(clean, camera['shot'], camera['read'], rng)
        # drawn even when unused, so the number of draws per image does not depend on the outcome
        compress = rng.uniform() < self.jpeg_prob
        quality = rng.randint(int(self.jpeg_quality[0]), int(self.jpeg_quality[1]) + 1)
        if compress:
            noisy = cp.jpeg_round_trip(noisy, quality)
        elif self.quantize:
            noisy = cp.quantize8(noisy)
        return noisy, target

    def __getitem__(self, index):
        path = self.paths[index]
        img = self._read(index)
        if self.is_train:
            noisy, clean = self.make_pair(self._train_patch(img, path), np.random)
        else:
            noisy, clean = self.make_pair(np.ascontiguousarray(img), np.random.RandomState([self.noise_seed, index]))
        gt = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1))).float()
        lq = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1))).float()
        rms = float(np.sqrt(np.mean((noisy.astype(np.float64) - clean) ** 2)) * 255.)
        return {'lq': lq, 'gt': gt, 'lq_path': path, 'gt_path': path, 'noise_std': torch.tensor(rms)}
