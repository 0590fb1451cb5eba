"""Keeping test images out of training sets, and the fixed validation hold-outs.

A training set that contains a test image inflates every number reported on that test set, and
it happens easily: BSDS500's ``val`` folder holds all 68 CBSD68 images (the CBSD68 PNGs decode to
exactly the pixels of those JPGs). So images are compared by their *decoded pixels*, not by
file name or bytes: :func:`pixel_digest` of a training image read in the training set's mode
(``gray`` / ``color``) against the digests of every known test image read in the same mode.

The hold-outs are fixed lists of keys (``splits/<set>_val.txt``, shipped with the package):
images of the training set that checkpoint, recipe and hyper-parameter choices are made on, so the
test sets are only ever reported on.
"""
import hashlib
import os

from gimsanet_prep.errors import InputError
from gimsanet_prep.inputs import list_input_images, read_input_image
from gimsanet_prep.jobs import ordered_map

SPLITS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'splits')


def pixel_digest(img):
    """SHA-256 of an image's shape and pixels: equal for two files that decode to the same image."""
    h = hashlib.sha256(repr((img.shape, str(img.dtype))).encode())
    h.update(img.tobytes())
    return h.hexdigest()


def digests(paths, mode, workers=1):
    """``[(path, digest)]`` of the images read in ``mode`` (unreadable files raise InputError)."""
    return list(zip(paths, ordered_map(lambda p: pixel_digest(read_input_image(p, mode)), paths, workers)))


def known_test_digests(folders, mode, workers=1):
    """``{digest: 'SET/file'}`` of every image in the test-set ``folders`` (``{name: folder}``)
    that exists; missing folders are skipped (the check covers what the user has)."""
    known = {}
    for name, folder in folders.items():
        if not os.path.isdir(folder):
            continue
        for path, digest in digests(list_input_images(folder), mode, workers):
            known.setdefault(digest, f'{name}/{os.path.basename(path)}')
    return known


def split_off_test_images(items, known, workers=1, mode='color'):
    """``(kept, dropped)``: ``items`` (``[(key, path)]``) without the images equal to a known test
    image, and the dropped ``[(path, test image)]``."""
    kept, dropped = [], []
    paths = [path for _, path in items]
    for (key, path), (_, digest) in zip(items, digests(paths, mode, workers)):
        if digest in known:
            dropped.append((path, known[digest]))
        else:
            kept.append((key, path))
    return kept, dropped


def refuse_test_images(set_name, items, known, mode, workers=1):
    """Raise :class:`InputError` (one line naming every file) when a training image of
    ``set_name`` decodes to the pixels of a known test image."""
    _, dropped = split_off_test_images(items, known, workers, mode)
    if dropped:
        pairs = ', '.join(f'{path} = {test}' for path, test in dropped)
        raise InputError([f'{set_name}: {len(dropped)} training image(s) have the same pixels as test images '
                          f'({pairs}); remove them from the training folder'],
                         header=f'{set_name} would train on test images')


def read_split(set_name):
    """The hold-out keys of ``set_name`` (``splits/<set_name>_val.txt``), or ``None`` if it has none."""
    path = os.path.join(SPLITS_DIR, f'{set_name}_val.txt')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def split_items(items, val_keys):
    """``(train, val)`` of ``[(key, path)]`` by the hold-out ``val_keys``; ``None`` when a listed
    key is missing (the set is not the standard one)."""
    by_key = dict(items)
    if any(k not in by_key for k in val_keys):
        return None
    held = set(val_keys)
    return [(k, p) for k, p in items if k not in held], [(k, by_key[k]) for k in sorted(held)]
