"""Reading clean images for the denoising datasets, with errors that name the file or key.

BasicSR's own readers turn a missing LMDB key or a corrupt file into ``NoneType``/``astype``
errors that name nothing; these helpers raise :class:`ImageReadError` instead.
"""
import os
import os.path as osp

import cv2
import numpy as np

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.ppm', '.webp',
                  '.PNG', '.JPG', '.JPEG', '.BMP', '.TIF', '.TIFF')


class ImageReadError(RuntimeError):
    """An image that cannot be read or does not fit the dataset's options."""


def list_images(folder):
    """Sorted image paths of ``folder`` (recursive); a clear error if there are none."""
    if not osp.isdir(folder):
        raise ImageReadError(f'dataset folder not found: {folder}')
    paths = []
    for root, _, files in os.walk(folder):
        paths.extend(osp.join(root, f) for f in files if f.endswith(IMG_EXTENSIONS))
    if not paths:
        raise ImageReadError(f'no images ({", ".join(sorted({e.lower() for e in IMG_EXTENSIONS}))}) in {folder}')
    return sorted(paths)


def read_meta_keys(meta_info_file):
    """First token of each non-empty line of a BasicSR ``meta_info.txt``, extension removed."""
    if not osp.isfile(meta_info_file):
        raise ImageReadError(f'meta_info file not found: {meta_info_file}')
    with open(meta_info_file) as f:
        names = [line.split(' ')[0].strip() for line in f if line.strip()]
    if not names:
        raise ImageReadError(f'meta_info file is empty: {meta_info_file}')
    return names


def decode_image(content, source, in_ch):
    """Decode image bytes to float32 HxWxC in [0, 1], BGR order for colour, C == ``in_ch``.

    Colour images asked for as gray are converted (as cv2's IMREAD_GRAYSCALE does, which is what
    Restormer's gray training uses); a gray image asked for as colour is an error, because
    training a colour denoiser on replicated gray channels is almost always a data mix-up.
    """
    if content is None:
        raise ImageReadError(f'missing image: {source}')
    buf = np.frombuffer(content, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ImageReadError(f'corrupt or unreadable image: {source}')
    if img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.
    elif img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.
    else:
        raise ImageReadError(f'unsupported image dtype {img.dtype}: {source}')
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]  # drop alpha
    channels = 1 if img.ndim == 2 else img.shape[2]
    if in_ch == 1:
        if channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return img.reshape(img.shape[0], img.shape[1], 1)
    if in_ch == 3:
        if channels != 3:
            raise ImageReadError(f'image has {channels} channel(s) but in_ch is 3: {source}')
        return img
    raise ImageReadError(f'in_ch must be 1 or 3, got {in_ch}')


def read_file_bytes(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as err:
        raise ImageReadError(f'cannot read image {path}: {err.strerror}') from None


class LmdbReader:
    """Read-only access to a BasicSR LMDB, opened lazily (once per DataLoader worker).

    lmdb refuses to open one environment twice in a process, and a run often reads one LMDB from
    several datasets (``val_1``..``val_3`` at different sigmas), so environments are shared per
    process and path. py-lmdb also refuses, in a forked DataLoader worker, a path its parent still
    has open, so every environment is closed before a fork (the parent reopens on its next read).
    """
    _envs = {}

    @classmethod
    def close_all(cls):
        for env in cls._envs.values():
            env.close()
        cls._envs.clear()

    def __init__(self, path):
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise ImageReadError(f'LMDB not found: {path} (no data.mdb)')
        self.path = path

    def _env(self):
        key = (os.getpid(), osp.realpath(self.path))  # environments must not cross a fork
        env = LmdbReader._envs.get(key)
        if env is None:
            import lmdb
            env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
            LmdbReader._envs[key] = env
        return env

    def get(self, key):
        with self._env().begin(write=False) as txn:
            value = txn.get(key.encode('ascii'))
        if value is None:
            raise ImageReadError(f'key "{key}" not found in LMDB {self.path} (check meta_info.txt)')
        return bytes(value)


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(before=LmdbReader.close_all)
