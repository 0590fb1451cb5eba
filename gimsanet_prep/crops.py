"""Overlapping sub-images ("crops") of large training images, exactly as BasicSR's
``scripts/data_preparation/extract_subimages.py`` cuts them."""
import numpy as np


def crop_positions(length, crop_size, step, thresh_size=0):
    """Start offsets along one axis, exactly as BasicSR's ``extract_subimages``.

    An axis shorter than ``crop_size`` yields ``[]`` (BasicSR would crash on it).
    """
    if length < crop_size:
        return []
    space = list(range(0, length - crop_size + 1, step))
    if length - (space[-1] + crop_size) > thresh_size:
        space.append(length - crop_size)
    return space


def extract_subimages(img, crop_size, step, thresh_size=0, keep_small=True):
    """Overlapping crops of ``img`` as ``[(index, crop)]``, ``index`` from 1 in BasicSR's order
    (rows then columns); BasicSR names them ``<name>_s{index:03d}``.

    An image smaller than ``crop_size`` in either dimension is returned whole as index 1 when
    ``keep_small`` (else ``[]``).
    """
    h, w = img.shape[:2]
    hs, ws = crop_positions(h, crop_size, step, thresh_size), crop_positions(w, crop_size, step, thresh_size)
    if not hs or not ws:
        return [(1, img)] if keep_small else []
    crops = []
    index = 0
    for y in hs:
        for x in ws:
            index += 1
            crops.append((index, np.ascontiguousarray(img[y:y + crop_size, x:x + crop_size, ...])))
    return crops


def crop_key(key, index):
    """The key of sub-image ``index`` of ``key``: ``<key>_s001``, ... (BasicSR's names)."""
    return f'{key}_s{index:03d}'
