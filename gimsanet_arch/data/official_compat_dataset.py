"""Restormer's dataset type names, so its option files run unchanged: ``Dataset_GaussianDenoising``
and ``Dataset_PairedImage`` (swz30/Restormer ``basicsr/data/paired_image_dataset.py``).

Behaviour follows the official classes (written anew here, not copied):

``Dataset_GaussianDenoising`` (synthetic AWGN from clean images)
    * ``in_ch: 3``: every file decoded as colour (cv2 ``IMREAD_COLOR``, so a gray file gives three
      equal channels), BGR -> RGB; ``in_ch: 1``: decoded with cv2 ``IMREAD_GRAYSCALE`` (8-bit gray,
      rounded the way OpenCV rounds, not a float conversion).
    * training: reflect-pad (``cv2.BORDER_REFLECT``, bottom/right) images smaller than ``gt_size``,
      random ``gt_size`` crop, ``geometric_augs``: one of the eight flips/rotations, then noise
      ``torch.randn * sigma/255`` with sigma from ``sigma_type``: ``constant`` (``sigma_range`` is
      the number), ``random`` (uniform in ``sigma_range``), ``choice`` (one of ``sigma_range``).
    * validation/test: numpy's global generator is reset with seed 0 for every image and
      ``normal(0, sigma_test/255)`` noise (float64) is added to the RGB (or gray) image; not clipped.
    * ``dataroot_lq`` and ``filename_tmpl`` are accepted and ignored (as in the official code).
    * the official class indexes plain path strings as dicts and misses imports (Restormer issue
      #36); here it works, for folders, ``meta_info_file`` and LMDBs (``io_backend.type: lmdb``).

``Dataset_PairedImage`` (noisy/clean pairs, e.g. SIDD crops)
    * BasicSR's pair discovery (``dataroot_lq``/``dataroot_gt``, ``filename_tmpl``, folder,
      ``meta_info_file`` or LMDB) via basicsr's ``PairedImageDataset``;
    * training: reflect-pad to ``gt_size``, paired random crop, then ``geometric_augs`` (Restormer:
      one of eight flips/rotations) or, if that key is absent, NAFNet/BasicSR's ``use_flip`` (alias
      ``use_hflip``) and ``use_rot``;
    * images returned RGB, CHW float32 in [0, 1]; optional ``mean``/``std`` normalisation.
"""
import random

import cv2
import numpy as np
import torch
from torchvision.transforms.functional import normalize

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from gimsanet_arch.data.gaussian_noise_dataset import GaussianNoiseDataset
from gimsanet_prep.images import decode, to_float


def geometric_augment(mode, *images):
    """One of Restormer's eight transforms (``mode`` 0..7) applied to every image (HxWxC).

    0 identity, 1 flip up-down, 2 rot90 (counter-clockwise), 3 rot90 + flip, 4 rot180,
    5 rot180 + flip, 6 rot270, 7 rot270 + flip.
    """
    out = []
    for img in images:
        k, flip = mode // 2, mode % 2
        res = np.rot90(img, k=k) if k else img
        if flip:
            res = np.flipud(res)
        out.append(np.ascontiguousarray(res))
    return out


def random_geometric_augment(*images):
    """Draw the mode with Python's ``random`` (as the official code does) and apply it."""
    return geometric_augment(random.randint(0, 7), *images)


def pad_to_size(img_a, img_b, size):
    """Reflect-pad (cv2.BORDER_REFLECT, bottom/right) both HxWxC images to at least ``size``."""
    h, w = img_a.shape[:2]
    pad_h, pad_w = max(0, size - h), max(0, size - w)
    if pad_h == 0 and pad_w == 0:
        return img_a, img_b
    out = []
    for img in (img_a, img_b):
        padded = cv2.copyMakeBorder(img, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT)
        out.append(padded[..., None] if padded.ndim == 2 else padded)
    return out[0], out[1]


def _decode(content, source, in_ch):
    """As the official code: gray with cv2's IMREAD_GRAYSCALE, colour with IMREAD_COLOR, then RGB."""
    img = to_float(decode(content, source, 'gray' if in_ch == 1 else 'color'), source)
    return img if in_ch == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@DATASET_REGISTRY.register()
class Dataset_GaussianDenoising(GaussianNoiseDataset):  # noqa: N801 (official name)
    """Restormer's AWGN dataset (see the module docstring)."""

    OPTIONS = {
        'geometric_augs': "Restormer's random flips/rotations of training patches",
        'use_flip': "NAFNet's spelling of use_hflip",
    }

    def __init__(self, opt):
        super().__init__(opt)
        self.geometric_augs = bool(opt.get('geometric_augs', False)) if self.is_train else False

    def _read(self, index):
        if self.lmdb is not None:
            content = self.lmdb.get(self.keys[index])
        else:
            with open(self.paths[index], 'rb') as f:
                content = f.read()
        return _decode(content, self.paths[index], self.in_ch)

    def _draw_sigma(self):
        if self.sigma_type == 'constant':
            return self.sigma_range[0]
        if self.sigma_type == 'random':
            return random.uniform(self.sigma_range[0], self.sigma_range[1])
        return random.choice(self.sigma_range)

    def __getitem__(self, index):
        index = index % len(self.paths)
        path = self.paths[index]
        img_gt = self._read(index)
        img_lq = img_gt.copy()
        if self.is_train:
            gt_size = int(self.opt['gt_size'])
            img_gt, img_lq = pad_to_size(img_gt, img_lq, gt_size)
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, gt_size, 1, path)
            if self.geometric_augs:
                img_gt, img_lq = random_geometric_augment(img_gt, img_lq)
            img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=False, float32=True)
            sigma = float(self._draw_sigma())
            img_lq.add_(torch.randn(img_lq.size()).mul_(torch.tensor(sigma) / 255.0).float())
        else:
            sigma = self.sigma_test
            np.random.seed(seed=0)  # as official: the global generator, reset for every image
            img_lq = (img_lq + np.random.normal(0, sigma / 255.0, img_lq.shape)).astype(np.float32)
            img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=False, float32=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': path, 'gt_path': path, 'sigma': torch.tensor(sigma / 1.)}


@DATASET_REGISTRY.register()
class Dataset_PairedImage(PairedImageDataset):  # noqa: N801 (official name)
    """Restormer's paired dataset, also taking NAFNet's ``use_flip``/``use_rot`` (module docstring)."""

    OPTIONS = {
        'geometric_augs': "Restormer's random flips/rotations of training patches",
        'use_flip': "NAFNet's spelling of use_hflip",
    }

    def __init__(self, opt):
        opt.setdefault('filename_tmpl', '{}')
        super().__init__(opt)
        self.is_train = opt.get('phase') == 'train'

    def _get(self, path, key):
        return to_float(decode(self.file_client.get(path, key), f'{path} ({key})', 'color'), path)

    def __getitem__(self, index):
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        index = index % len(self.paths)
        gt_path, lq_path = self.paths[index]['gt_path'], self.paths[index]['lq_path']
        img_gt, img_lq = self._get(gt_path, 'gt'), self._get(lq_path, 'lq')
        if self.is_train:
            gt_size = int(self.opt['gt_size'])
            img_gt, img_lq = pad_to_size(img_gt, img_lq, gt_size)
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, gt_size, self.opt.get('scale', 1), gt_path)
            if 'geometric_augs' in self.opt:
                if self.opt['geometric_augs']:
                    img_gt, img_lq = random_geometric_augment(img_gt, img_lq)
            else:
                hflip = self.opt.get('use_flip', self.opt.get('use_hflip', False))
                img_gt, img_lq = augment([img_gt, img_lq], hflip, self.opt.get('use_rot', False))
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(img_lq, self.mean, self.std, inplace=True)
            normalize(img_gt, self.mean, self.std, inplace=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': lq_path, 'gt_path': gt_path}

