"""The one image reader (and writer) of the project: listing, reading, decoding, channel handling.

Datasets, the data-preparation scripts and the comparison all read images through this module,
so every one of them accepts the same files and reports a bad one the same way: an
:class:`ImageReadError` whose message names the file (or LMDB key).

The layers, each usable alone::

    read_bytes(path) -> bytes                       (the file, or ImageReadError)
    decode(content, source, mode) -> uint8/uint16   (HxW or HxWxC BGR, exactly as stored)
    to_float(img) -> float32 HxWxC in [0, 1]
    match_channels(img, in_ch, source) -> HxWxC with C == in_ch
    decode_float(content, source, in_ch)            (the three above: what the datasets use)
    from_float(img, dtype), write_image(path, img)  (back to 8/16 bit, written atomically)

Only numpy and OpenCV are imported: no torch, so the preparation scripts start fast.
"""
import os
import re

import cv2
import numpy as np

#: Image file extensions, matched case-insensitively (``a.PNG`` and ``b.Jpg`` count).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.ppm', '.webp')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}  # IHDR colour type -> channels as OpenCV decodes them (no alpha)
_DECODE_FLAGS = {'unchanged': cv2.IMREAD_UNCHANGED, 'color': cv2.IMREAD_COLOR, 'gray': cv2.IMREAD_GRAYSCALE}


class ImageReadError(RuntimeError):
    """An image that cannot be read or does not fit what the reader asked for; the message names
    the file or key."""


# ----------------------------------------------------------------------------------- listing
def is_image_file(name):
    """Whether ``name`` has an image extension (any case) and is not a hidden file."""
    return not os.path.basename(name).startswith('.') and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder, recursive=True, pattern=None):
    """Sorted paths of the image files in ``folder`` (and its subfolders when ``recursive``).

    Hidden files (``.name``, e.g. macOS ``._a.png``) are skipped. ``pattern`` (a regex string or
    compiled regex) keeps only the files whose name (not path) it matches (``re.search``).

    Raises:
        ImageReadError: naming ``folder`` when it is missing or holds no image.
    """
    if not os.path.isdir(folder):
        raise ImageReadError(f'image folder not found: {folder}')
    if isinstance(pattern, str):
        pattern = re.compile(pattern)
    if recursive:
        walk = ((root, names) for root, _, names in os.walk(folder))
    else:
        walk = [(folder, [n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n))])]
    paths = [os.path.join(root, name) for root, names in walk for name in names
             if is_image_file(name) and (pattern is None or pattern.search(name))]
    if not paths:
        raise ImageReadError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {folder}')
    return sorted(paths)


# ----------------------------------------------------------------------------------- reading
def read_bytes(path):
    """The content of an image file; :class:`ImageReadError` naming it when it cannot be read."""
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as err:
        raise ImageReadError(f'cannot read image {path}: {err.strerror}') from None


def decode(content, source, mode='unchanged'):
    """Decode image bytes with OpenCV, keeping what is stored.

    Args:
        content: the encoded bytes (``None``: the image is missing, e.g. an absent LMDB key).
        source: the file or key named in errors.
        mode: ``'unchanged'`` (as stored: uint8 or uint16, HxW for gray, HxWxC BGR(A)),
            ``'color'`` (8-bit HxWx3 BGR) or ``'gray'`` (8-bit HxW), like cv2's ``IMREAD_*`` flags.

    Raises:
        ImageReadError: naming ``source`` when the content is missing, empty or not an image.
    """
    if content is None:
        raise ImageReadError(f'missing image: {source}')
    if mode not in _DECODE_FLAGS:
        raise ValueError(f'mode must be one of {", ".join(_DECODE_FLAGS)}, got {mode!r}')
    buf = np.frombuffer(content, np.uint8)
    img = cv2.imdecode(buf, _DECODE_FLAGS[mode]) if buf.size else None
    if img is None:
        raise ImageReadError(f'corrupt or unreadable image: {source}')
    return img


def read_image(path, mode='unchanged'):
    """:func:`decode` of the file ``path`` (errors name the path)."""
    return decode(read_bytes(path), path, mode)


# ----------------------------------------------------------------------------------- conversions
def to_float(img, source=None):
    """float32 HxWxC in [0, 1] of a uint8 (/255) or uint16 (/65535) image; gray gets C == 1.

    Other dtypes raise :class:`ImageReadError` (naming ``source`` when given).
    """
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.
    else:
        raise ImageReadError(f'unsupported image dtype {img.dtype}' + (f': {source}' if source is not None else ''))
    return out[:, :, None] if out.ndim == 2 else out


def drop_alpha(img):
    """``img`` without its alpha channel (BGRA -> BGR, gray+alpha -> gray); others unchanged."""
    if img.ndim == 3 and img.shape[2] in (2, 4):
        return np.ascontiguousarray(img[:, :, :img.shape[2] - 1])
    return img


def match_channels(img, in_ch, source, gray_to_color='error'):
    """HxWxC with ``C == in_ch`` (1 or 3) from an HxW or HxWxC BGR(A) image.

    Alpha is dropped; colour asked for as gray is converted with ``cv2.COLOR_BGR2GRAY`` (what
    cv2's ``IMREAD_GRAYSCALE`` does, and Restormer's gray training uses). A gray image asked for
    as colour is an error by default, because training a colour denoiser on replicated gray
    channels is almost always a data mix-up; ``gray_to_color='replicate'`` repeats the channel.
    """
    if gray_to_color not in ('error', 'replicate'):
        raise ValueError(f"gray_to_color must be 'error' or 'replicate', got {gray_to_color!r}")
    img = drop_alpha(img)
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if in_ch == 1:
        if channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return img.reshape(img.shape[0], img.shape[1], 1)
    if in_ch == 3:
        if channels == 3:
            return img
        if gray_to_color == 'replicate' and channels == 1:
            return np.repeat(img, 3, axis=2)
        raise ImageReadError(f'image has {channels} channel(s) but in_ch is 3: {source}')
    raise ImageReadError(f'in_ch must be 1 or 3, got {in_ch}')


def decode_float(content, source, in_ch):
    """Image bytes -> float32 HxWxC BGR in [0, 1] with ``C == in_ch``: :func:`decode` as stored,
    :func:`to_float` (before any colour conversion, so gray values are not rounded to 8 bits),
    then :func:`match_channels` (a gray image for ``in_ch`` 3 is an error)."""
    return match_channels(to_float(decode(content, source), source), in_ch, source)


def from_float(img, dtype):
    """Round a float image in [0, 1] (clipped) to ``dtype`` (uint8 or uint16); HxWx1 -> HxW."""
    peak = {np.dtype(np.uint8): 255., np.dtype(np.uint16): 65535.}[np.dtype(dtype)]
    out = (np.clip(img, 0, 1) * peak).round().astype(dtype)
    return out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out


def write_image(path, img):
    """Write ``img`` (uint8/uint16, BGR) to ``path`` atomically: encoded to a hidden temp file in
    the same folder, then renamed over ``path``, so an existing file is never left half-written."""
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(name)[1]
    tmp = os.path.join(folder, f'.{name}.{os.getpid()}.tmp{ext}')  # OpenCV picks the format by extension
    try:
        if not cv2.imwrite(tmp, img):
            raise OSError(f'cannot encode {img.dtype} image as {ext}: {path}')
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def encode_png(img, compress_level=1):
    """PNG bytes and ``(h, w, c)`` of a uint8 BGR/gray image, as BasicSR's ``read_img_worker``."""
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise ValueError('cv2.imencode failed')
    h, w = img.shape[:2]
    c = 1 if img.ndim == 2 else img.shape[2]
    return buf.tobytes(), (h, w, c)


# ----------------------------------------------------------------------------------- cheap checks
def sniff_image_file(path, in_ch):
    """Cheap checks from a file's first and last bytes (no decoding): empty, truncated PNG/JPEG
    (no end marker), and a PNG with the wrong channel count for ``in_ch``. Returns an error or None."""
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(32)
            f.seek(max(size - 12, 0))
            tail = f.read(12)
    except OSError as err:
        return f'cannot read image {path}: {err.strerror}'
    if size == 0:
        return f'empty image file: {path}'
    ext = os.path.splitext(path)[1].lower()
    if ext == '.png' and not head.startswith(PNG_SIGNATURE):
        return f'corrupt or unreadable image (not a PNG file): {path}'
    if ext in ('.jpg', '.jpeg') and not head.startswith(b'\xff\xd8'):
        return f'corrupt or unreadable image (not a JPEG file): {path}'
    if head.startswith(PNG_SIGNATURE):
        if not tail.endswith(b'IEND\xaeB`\x82'):
            return f'truncated or corrupt PNG (no IEND chunk): {path}'
        channels = PNG_CHANNELS.get(head[25]) if len(head) > 25 else None
        if in_ch == 3 and channels == 1:
            return f'image has 1 channel(s) but in_ch is 3: {path}'
    elif head.startswith(b'\xff\xd8'):
        if b'\xff\xd9' not in tail:
            return f'truncated or corrupt JPEG (no end marker): {path}'
    return None
