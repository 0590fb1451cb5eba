"""A photo's stored orientation (EXIF / TIFF tag 274), read and applied exactly once.

Decoders disagree on who applies it: OpenCV's ``IMREAD_UNCHANGED`` leaves JPEG, PNG (eXIf) and
WebP as stored, but its TIFF decoder (libtiff) turns TIFFs upright by itself (and gets tiled
8-bit TIFFs wrong). Applying the tag again after that turned portrait TIFFs sideways. So a TIFF
is decoded with its tag set to 1 in an in-memory copy: every format then decodes as stored, and
:func:`read_oriented` applies the orientation once, or not at all (``keep``).

Only numpy and OpenCV are imported (Pillow, when installed, reads the EXIF of the other formats).
"""
import io
import struct

import numpy as np

from gimsanet_prep.images import decode, read_bytes

ORIENTATION_TAG = 0x0112
# orientation -> the array operation that shows the stored pixels upright (as PIL's exif_transpose)
UPRIGHT = {
    2: lambda a: a[:, ::-1],                           # mirrored left-right
    3: lambda a: a[::-1, ::-1],                        # rotated 180
    4: lambda a: a[::-1],                              # mirrored top-bottom
    5: lambda a: np.swapaxes(a, 0, 1),                 # transposed
    6: lambda a: np.rot90(a, -1),                      # rotated: turn 90 degrees clockwise
    7: lambda a: np.rot90(np.swapaxes(a, 0, 1), 2),    # transversed
    8: lambda a: np.rot90(a, 1),                       # rotated: turn 90 degrees counter-clockwise
}
_TIFF_MAGIC = {b'II*\x00': '<', b'MM\x00*': '>', b'II+\x00': '<', b'MM\x00+': '>'}
_VALUE_FORMAT = {3: 'H', 4: 'I', 16: 'Q'}  # SHORT (the standard), LONG, LONG8: the ones a writer may use


def _tiff_orientation_entry(content):
    """``(orientation, value offset, struct format)`` of tag 274 in a TIFF's first IFD (the page
    OpenCV decodes); ``(1, None, None)`` for a TIFF without it (or with a damaged header: the decoder
    names the file); None when ``content`` is not a TIFF."""
    order = _TIFF_MAGIC.get(bytes(content[:4]))
    if order is None:
        return None
    big = content[2:4] in (b'+\x00', b'\x00+')  # BigTIFF: 8-byte offsets and counts, 20-byte entries
    entry_size, count_fmt = (20, 'Q') if big else (12, 'H')
    try:
        ifd = struct.unpack_from(order + ('Q' if big else 'I'), content, 8 if big else 4)[0]
        n = struct.unpack_from(order + count_fmt, content, ifd)[0]
        first = ifd + struct.calcsize(count_fmt)
        for i in range(min(n, 4096)):
            pos = first + i * entry_size
            tag, kind = struct.unpack_from(order + 'HH', content, pos)
            if tag == ORIENTATION_TAG and kind in _VALUE_FORMAT:
                at = pos + 4 + (8 if big else 4)  # the value is stored in the entry itself
                fmt = order + _VALUE_FORMAT[kind]
                return struct.unpack_from(fmt, content, at)[0], at, fmt
    except struct.error:
        pass
    return 1, None, None


def _exif_orientation(content):
    """The EXIF orientation of a JPEG / PNG / WebP (through Pillow); 1 when none or unreadable."""
    try:
        from PIL import Image
        with Image.open(io.BytesIO(content)) as im:
            return im.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001  (no EXIF, no Pillow, or a format it does not read: as stored)
        return 1


def as_stored(content):
    """``(content, orientation)``: bytes that every decoder reads as stored, and the orientation
    (1-8; 1 when none or not a valid value) that shows them upright."""
    entry = _tiff_orientation_entry(content)
    if entry is None:
        value = _exif_orientation(content)
        return content, value if value in UPRIGHT else 1
    value, at, fmt = entry
    if value != 1 and at is not None:
        patched = bytearray(content)
        struct.pack_into(fmt, patched, at, 1)  # libtiff now leaves the raster as stored
        content = bytes(patched)
    return content, value if value in UPRIGHT else 1


def upright(img, orientation):
    """The stored pixels ``img`` turned the way viewers show an image of that ``orientation``."""
    turn = UPRIGHT.get(orientation)
    return np.ascontiguousarray(turn(img)) if turn else img


def read_oriented(path, keep=False):
    """The image at ``path`` (as :func:`gimsanet_prep.images.read_image`) upright as viewers show it,
    or exactly as stored with ``keep``; whatever the format and whoever would have applied the tag."""
    content, orientation = as_stored(read_bytes(path))
    img = decode(content, path)
    return img if keep else upright(img, orientation)
