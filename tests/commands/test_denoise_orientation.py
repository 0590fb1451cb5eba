"""gimsanet-denoise turns every format upright exactly once (``--keep-orientation``: as stored), for
the 8 orientations of each format that carries one: JPEG (EXIF), PNG (eXIf), WebP (EXIF) and TIFF
(tag 274, 8-bit colour and 16-bit gray). OpenCV's TIFF decoder applies the tag by itself; applying
it again turned portrait TIFFs sideways.

The files are built here with Pillow; the network is replaced by the identity, so the written file
is the image exactly as the command oriented it, compared with Pillow's ``exif_transpose``."""
import os

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.commands import denoise
from gimsanet_arch.inference import photo

Image = pytest.importorskip('PIL.Image')
ImageOps = pytest.importorskip('PIL.ImageOps')

ORIENTATION = 0x0112
# (folder, extension of the input, extension of the output, 16-bit gray?)
FORMATS = [('jpg', '.jpg', '.png', False), ('png', '.png', '.png', False), ('webp', '.webp', '.webp', False),
           ('tif', '.tif', '.tif', False), ('tif16', '.tif', '.tif', True)]


def stored_pixels(fmt, gray16):
    """A 16x24 stored image, RGB (or 16-bit gray), whose 8 orientations all differ; 8x8 blocks
    for JPEG, so its lossy round trip cannot be mistaken for another orientation."""
    rng = np.random.default_rng(7)
    if gray16:
        return rng.integers(0, 65536, (16, 24), dtype=np.uint16)
    if fmt == 'jpg':
        return np.kron(rng.integers(0, 256, (2, 3, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    return rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)


def save_with_orientation(path, pixels, fmt, orientation):
    im = Image.fromarray(pixels)
    if fmt.startswith('tif'):
        im.save(path, tiffinfo={ORIENTATION: orientation})
        return
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    options = {'jpg': {'quality': 100, 'subsampling': 0}, 'webp': {'lossless': True}}.get(fmt, {})
    im.save(path, exif=exif, **options)


def viewed(pixels, orientation):
    """How viewers show ``pixels`` stored with ``orientation`` (Pillow's own transform)."""
    im = Image.fromarray(pixels)
    im.getexif()[ORIENTATION] = orientation
    return np.asarray(ImageOps.exif_transpose(im))


@pytest.fixture
def oriented(tmp_path, monkeypatch):
    torch.manual_seed(0)
    torch.save({'params': GIMSANet(num_feat=4).state_dict()}, tmp_path / 'tiny.pth')
    stored = {}
    for fmt, ext, _, gray16 in FORMATS:
        (tmp_path / 'in' / fmt).mkdir(parents=True)
        stored[fmt] = stored_pixels(fmt, gray16)
        for o in range(1, 9):
            save_with_orientation(tmp_path / 'in' / fmt / f'o{o}{ext}', stored[fmt], fmt, o)
    # the identity network: what is written is the image as the command read and turned it
    monkeypatch.setattr(photo, 'run_on_array', lambda net, x, multiple=1, **options: x)
    return tmp_path, stored


def run(root, out, *extra):
    return denoise.main([str(root / 'in'), '-o', str(root / out), '--arch', 'GIMSANet', '--arch-args',
                         '{num_feat: 4}', '--weights', str(root / 'tiny.pth'), '--device', 'cpu', '--no-progress',
                         *extra])


def written(root, out, fmt, o, out_ext):
    img = cv2.imread(str(root / out / fmt / f'o{o}{out_ext}'), cv2.IMREAD_UNCHANGED)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def close(a, b, fmt):
    """Equal (lossless formats), or within JPEG decoders' rounding (OpenCV's and Pillow's libjpeg)."""
    if a.shape != b.shape:
        return False
    return np.abs(a.astype(int) - b.astype(int)).max() <= (3 if fmt == 'jpg' else 0)


def test_every_format_and_orientation_is_upright_once_or_kept_as_stored(oriented):
    root, stored = oriented
    assert run(root, 'up') == 0 and run(root, 'kept', '--keep-orientation') == 0
    wrong = []
    for fmt, _, out_ext, _ in FORMATS:
        for o in range(1, 9):
            if not close(written(root, 'up', fmt, o, out_ext), viewed(stored[fmt], o), fmt):
                wrong.append(f'{fmt} orientation {o}: not upright')
            if not close(written(root, 'kept', fmt, o, out_ext), stored[fmt], fmt):
                wrong.append(f'{fmt} orientation {o}: not as stored with --keep-orientation')
    assert not wrong, wrong


def test_opencv_turns_tiffs_itself_and_leaves_the_other_formats_as_stored(tmp_path):
    """Why TIFF is special: what the installed OpenCV does with each format's tag (if a future
    OpenCV changes this, the command stays right: it decodes every TIFF with the tag cleared)."""
    for fmt, ext, _, gray16 in FORMATS:
        pixels = stored_pixels(fmt, gray16)
        path = tmp_path / f'{fmt}{ext}'
        save_with_orientation(path, pixels, fmt, 6)
        img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)  # as gimsanet_prep decodes
        img = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        expected = viewed(pixels, 6) if fmt.startswith('tif') else pixels
        assert close(img, expected, fmt), fmt


def test_a_damaged_or_tagless_tiff_is_left_to_the_decoder(tmp_path):
    from gimsanet_prep.orientation import as_stored
    path = tmp_path / 'plain.tif'
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path)
    content = path.read_bytes()
    assert as_stored(content) == (content, 1)
    assert as_stored(content[:10]) == (content[:10], 1)  # truncated: the decoder names the file later
    assert as_stored(b'II*\x00\xff\xff\xff\xff') == (b'II*\x00\xff\xff\xff\xff', 1)
    assert sorted(os.listdir(tmp_path)) == ['plain.tif']
