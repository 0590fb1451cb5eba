"""Raw inputs of a preparation script: listing and reading images, pairing noisy with clean
files, and turning file names into LMDB keys.

Every function reports problems as :class:`~gimsanet_prep.errors.InputError` naming the file,
so a script can collect all of them and fail once with the complete list.
"""
import hashlib
import os
import re

import numpy as np

from gimsanet_prep.errors import InputError
from gimsanet_prep.images import ImageReadError, drop_alpha, list_images, read_image

KEY_PATTERN = re.compile(r'^[A-Za-z0-9_-]+$')


# ----------------------------------------------------------------------------------- files
def list_input_images(folder, pattern=None):
    """Sorted image files directly in ``folder`` (see :func:`gimsanet_prep.images.list_images`),
    ``[]`` when it holds none; :class:`InputError` naming the folder when it is missing."""
    if not os.path.isdir(folder):
        raise InputError([f'{folder}: folder not found'])
    try:
        return list_images(folder, recursive=False, pattern=pattern)
    except ImageReadError:  # an existing folder without images: the caller says what it expected there
        return []


def require_files(paths):
    """Raise :class:`InputError` naming every path in ``paths`` that is not an existing file."""
    missing = [f'{p}: file not found' for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputError(missing)


def read_input_image(path, mode='unchanged'):
    """An 8-bit image as OpenCV reads it (BGR; gray as 2-D; an alpha channel dropped), or
    :class:`InputError` naming the file.

    ``mode``: ``'unchanged'`` (as stored), ``'color'`` (3-channel BGR) or ``'gray'`` (2-D).
    Preparation stores 8-bit PNGs only, so a 16-bit input is refused rather than truncated.
    """
    if not os.path.isfile(path):
        raise InputError([f'{path}: file not found'])
    try:
        img = read_image(path, mode)
    except ImageReadError:
        raise InputError([f'{path}: unreadable or corrupt image']) from None
    if img.dtype != np.uint8:
        raise InputError([f'{path}: expected an 8-bit image, got {img.dtype}'])
    return drop_alpha(img)


# ----------------------------------------------------------------------------------- keys
def sanitize_key(name):
    """A BasicSR-safe LMDB key from a file stem: ASCII letters, digits, ``_`` and ``-`` only.

    (BasicSR derives keys from ``meta_info.txt`` with ``line.split('.')[0]``, so a key must not
    contain a dot, and the line format forbids spaces.)
    """
    return re.sub(r'[^A-Za-z0-9_-]', '_', name)


def key_problem(key):
    """Why ``key`` cannot be an LMDB key (a message), or ``None`` when it is fine."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        return f'invalid key {key!r} (allowed: ASCII letters, digits, "_", "-")'
    return None


# ----------------------------------------------------------------------------------- pairs
def find_pairs(folder, noisy_tag, clean_tag, pattern=None, clean_folder=None, strict=True):
    """Pair noisy and clean files of ``folder`` whose names differ only by a tag.

    The key of a file is its stem with the first (case-insensitive) occurrence of its tag
    removed, e.g. ``*_real.JPG`` / ``*_mean.JPG`` (PolyU, Nam) or ``0001_NOISY_SRGB_010.PNG`` /
    ``0001_GT_SRGB_010.PNG`` (SIDD, key ``0001_SRGB_010``). Files with neither tag are ignored.
    ``pattern``: only image files whose name matches this regex (e.g. ``r'(?i)\\.png$'``).
    ``clean_folder``: the clean images lie in another folder (e.g. ``CC/real/`` and ``CC/mean/``).

    Returns:
        ``[(key, noisy_path, clean_path)]`` sorted by key; with ``strict=False`` a tuple
        ``(pairs, problems)`` instead of raising for unpaired / duplicate files.

    Raises:
        InputError: naming every unpaired file and every key claimed twice (also when the folder
            is missing or holds no pair).
    """
    tags = {'noisy': re.compile(re.escape(noisy_tag), re.I), 'clean': re.compile(re.escape(clean_tag), re.I)}
    found = {'noisy': {}, 'clean': {}}
    problems = []
    paths = list_input_images(folder, pattern)
    if clean_folder and os.path.abspath(clean_folder) != os.path.abspath(folder):
        paths += list_input_images(clean_folder, pattern)
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        for role, tag in tags.items():
            key, n = tag.subn('', stem, count=1)
            if n:
                key = sanitize_key(key)
                if key in found[role]:
                    problems.append(f'{path}: same key {key!r} as {found[role][key]}')
                else:
                    found[role][key] = path
                break
    noisy, clean = found['noisy'], found['clean']
    problems += [f'{noisy[k]}: no matching clean image (*{clean_tag}*) for it' for k in sorted(set(noisy) - set(clean))]
    problems += [f'{clean[k]}: no matching noisy image (*{noisy_tag}*) for it' for k in sorted(set(clean) - set(noisy))]
    if problems and strict:
        raise InputError(problems, header=f'Unpaired or duplicate images in {folder}')
    if not noisy and not problems:
        where = folder if not clean_folder else f'{folder} + {clean_folder}'
        raise InputError([f'{where}: no *{noisy_tag}* / *{clean_tag}* image pairs found'])
    pairs = [(k, noisy[k], clean[k]) for k in sorted(set(noisy) & set(clean))]
    return pairs if strict else (pairs, problems)


def find_real_mean_pairs(folder, noisy_tag='_real', clean_tag='_mean'):
    """(pairs, unpaired-file problems) in ``folder``, or in its ``real/`` and ``mean/`` subfolders."""
    noisy_dir, clean_dir = os.path.join(folder, 'real'), os.path.join(folder, 'mean')
    if os.path.isdir(noisy_dir) and os.path.isdir(clean_dir):
        return find_pairs(noisy_dir, noisy_tag, clean_tag, clean_folder=clean_dir, strict=False)
    return find_pairs(folder, noisy_tag, clean_tag, strict=False)


def file_sha256(path):
    """The hex SHA-256 of a file, read in 1 MiB blocks (checksums of downloads and shipped weights)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
