"""The part every synthetic-noise dataset shares: find the clean images (a folder or a BasicSR
LMDB), decode them (optionally once, into memory) and cut augmented training patches from them.
The noise is each subclass's business."""
import os.path as osp

import numpy as np
from torch.utils import data

from basicsr.data.transforms import augment
from gimsanet_arch.data.image_io import LmdbReader, read_meta_keys
from gimsanet_prep.images import ImageReadError, decode, list_images, match_channels, read_bytes, to_float


class CleanImageDataset(data.Dataset):
    """Clean images from ``dataroot_gt`` (folder, or LMDB with ``io_backend.type: lmdb``), listed by
    ``meta_info_file`` if given. Not registered: subclasses add the noise."""

    OPTIONS = {
        'in_ch': '1 (gray) or 3 (RGB) channels; colour files are converted for 1',
        'pad_small': 'reflect-pad images smaller than gt_size instead of failing',
        'cache_images': 'keep decoded images in memory after their first read',
    }

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.in_ch = int(opt.get('in_ch', 3))
        if self.in_ch not in (1, 3):
            raise ValueError(f'datasets.{opt.get("name")}: in_ch must be 1 or 3, got {self.in_ch}')
        self.is_train = opt.get('phase', 'train') == 'train'
        backend = dict(opt.get('io_backend') or {'type': 'disk'})
        self.backend = backend.get('type', 'disk')
        root = opt['dataroot_gt']
        self.root = root
        meta = opt.get('meta_info_file')
        if self.backend == 'lmdb':
            self.lmdb = LmdbReader(root)
            self.keys = [osp.splitext(name)[0] for name in read_meta_keys(meta or osp.join(root, 'meta_info.txt'))]
            self.paths = [f'{root}:{key}' for key in self.keys]
        elif self.backend == 'disk':
            self.lmdb = None
            if meta:
                self.paths = [osp.join(root, name) for name in read_meta_keys(meta)]
            else:
                self.paths = list_images(root)
            self.keys = self.paths
        else:
            raise ValueError(f'datasets.{opt.get("name")}.io_backend.type must be disk or lmdb, got {self.backend}')
        self.cache = {} if self.is_train and opt.get('cache_images', False) else None

    def __len__(self):
        return len(self.paths)

    def _decoded(self, index):
        """The image at ``index`` as stored (uint8/uint16, BGR), from the cache when enabled."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        source = self.paths[index]
        content = self.lmdb.get(self.keys[index]) if self.lmdb is not None else read_bytes(source)
        img = decode(content, source)
        if self.cache is not None:
            self.cache[index] = img
        return img

    def _read(self, index):
        """HxWxC float32 in [0, 1], RGB (or gray); gimsanet_prep.images.decode_float with the cache."""
        img = match_channels(to_float(self._decoded(index), self.paths[index]), self.in_ch, self.paths[index])
        return img if self.in_ch == 1 else img[:, :, ::-1]  # BGR -> RGB

    def _random_crop(self, img, path):
        gt_size = self.opt.get('gt_size')
        if not gt_size:
            return img
        h, w = img.shape[:2]
        if h < gt_size or w < gt_size:
            if not self.opt.get('pad_small', False):
                raise ImageReadError(f'image {path} is {h}x{w}, smaller than gt_size {gt_size} '
                                     '(set pad_small: true to reflect-pad it)')
            pad_h, pad_w = max(0, gt_size - h), max(0, gt_size - w)
            mode = 'reflect' if pad_h < h and pad_w < w else 'edge'
            img = np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
            h, w = img.shape[:2]
        top, left = np.random.randint(0, h - gt_size + 1), np.random.randint(0, w - gt_size + 1)
        return img[top:top + gt_size, left:left + gt_size]

    def _train_patch(self, img, path):
        """A random ``gt_size`` crop with BasicSR's flips/rotations (``use_hflip``, ``use_rot``)."""
        img = self._random_crop(img, path)
        img = augment(np.ascontiguousarray(img), self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        return np.ascontiguousarray(img).reshape(img.shape[0], img.shape[1], -1)
