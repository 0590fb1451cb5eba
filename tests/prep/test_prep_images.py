"""gimsanet_prep.images: the one image reader (listing, bytes, decoding, float, channels, sniffing)."""
import os
import re

import cv2
import numpy as np
import pytest

from gimsanet_prep.images import (IMAGE_EXTENSIONS, ImageReadError, decode, decode_float, encode_png, list_images,
                                  match_channels, read_bytes, read_image, sniff_image_file, to_float)


def _png(img):
    return cv2.imencode('.png', img)[1].tobytes()


# ----------------------------------------------------------------------------------- listing
def test_list_images_case_insensitive_sorted_recursive_and_pattern(tmp_path):
    for rel in ('b.PNG', 'a.jpg', 'c.Tiff', 'd.webp', 'notes.txt', '.hidden.png', 'sub/e.png', 'sub/deeper/f.JPEG'):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'x')
    root = str(tmp_path)
    assert list_images(root) == [os.path.join(root, r) for r in
                                 ('a.jpg', 'b.PNG', 'c.Tiff', 'd.webp', 'sub/deeper/f.JPEG', 'sub/e.png')]
    assert list_images(root, recursive=False) == [os.path.join(root, r) for r in ('a.jpg', 'b.PNG', 'c.Tiff', 'd.webp')]
    assert list_images(root, pattern=r'(?i)\.png$') == [os.path.join(root, 'b.PNG'), os.path.join(root, 'sub/e.png')]
    assert list_images(root, recursive=False, pattern=re.compile('^[ab]')) == [os.path.join(root, 'a.jpg'),
                                                                               os.path.join(root, 'b.PNG')]
    assert '.png' in IMAGE_EXTENSIONS and all(e == e.lower() for e in IMAGE_EXTENSIONS)


def test_list_images_missing_or_empty_folder_names_it(tmp_path):
    with pytest.raises(ImageReadError, match=f'image folder not found: {re.escape(str(tmp_path / "nope"))}'):
        list_images(str(tmp_path / 'nope'))
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'a.png').write_bytes(b'x')
    with pytest.raises(ImageReadError, match=rf'no images \(.*\) in {re.escape(str(tmp_path))}$'):
        list_images(str(tmp_path), recursive=False)
    with pytest.raises(ImageReadError, match='no images'):
        list_images(str(tmp_path), pattern='nothing matches this')


# ----------------------------------------------------------------------------------- reading
def test_read_bytes_and_decode_errors_name_the_source(tmp_path):
    with pytest.raises(ImageReadError, match=rf'cannot read image {re.escape(str(tmp_path / "x.png"))}: No such'):
        read_bytes(str(tmp_path / 'x.png'))
    with pytest.raises(ImageReadError, match='missing image: db.lmdb:k1'):
        decode(None, 'db.lmdb:k1')
    for content in (b'', b'not an image'):
        with pytest.raises(ImageReadError, match='corrupt or unreadable image: a.png'):
            decode(content, 'a.png')
    with pytest.raises(ValueError, match='mode'):
        decode(_png(np.zeros((2, 2), np.uint8)), 'a.png', 'rgb')


def test_decode_keeps_what_is_stored_and_modes(tmp_path):
    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, (5, 6), dtype=np.uint16)
    bgra = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    out = decode(_png(gray16), 's')
    assert out.dtype == np.uint16 and np.array_equal(out, gray16)
    assert np.array_equal(decode(_png(bgra), 's'), bgra)
    assert decode(_png(gray16), 's', 'color').shape == (5, 6, 3)
    assert decode(_png(bgra), 's', 'color').dtype == np.uint8
    gray = decode(_png(bgra[:, :, :3]), 's', 'gray')  # (the codec's own conversion: rounding may differ by 1)
    assert gray.shape == (5, 6) and gray.dtype == np.uint8
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, bgra)
    assert np.array_equal(read_image(path), bgra)
    (tmp_path / 'b.png').write_bytes(b'junk')
    with pytest.raises(ImageReadError, match=rf'corrupt or unreadable image: {re.escape(str(tmp_path / "b.png"))}'):
        read_image(str(tmp_path / 'b.png'))


# ----------------------------------------------------------------------------------- conversions
def test_to_float():
    u8 = np.array([[0, 51, 255]], np.uint8)
    assert to_float(u8).shape == (1, 3, 1) and to_float(u8).dtype == np.float32
    assert np.allclose(to_float(u8)[0, :, 0], [0, 0.2, 1])
    u16 = np.full((2, 2, 3), 65535, np.uint16)
    assert np.array_equal(to_float(u16), np.ones((2, 2, 3), np.float32))
    with pytest.raises(ImageReadError, match='unsupported image dtype float64: x.exr'):
        to_float(np.zeros((2, 2)), 'x.exr')


def test_match_channels():
    rng = np.random.default_rng(1)
    bgr = rng.random((4, 5, 3)).astype(np.float32)
    bgra = np.concatenate([bgr, np.ones((4, 5, 1), np.float32)], axis=2)
    assert np.array_equal(match_channels(bgra, 3, 's'), bgr)
    assert np.array_equal(match_channels(bgra, 1, 's'), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None])
    gray = bgr[:, :, 0]
    assert np.array_equal(match_channels(gray, 1, 's'), gray[:, :, None])
    with pytest.raises(ImageReadError, match=r'^image has 1 channel\(s\) but in_ch is 3: a\.png$'):
        match_channels(gray, 3, 'a.png')
    assert np.array_equal(match_channels(gray, 3, 's', gray_to_color='replicate'), np.stack([gray] * 3, axis=2))
    with pytest.raises(ImageReadError, match='in_ch must be 1 or 3, got 2'):
        match_channels(bgr, 2, 's')


def test_decode_float_converts_to_float_before_gray():
    rng = np.random.default_rng(2)
    bgr16 = rng.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    expected = cv2.cvtColor(bgr16.astype(np.float32) / 65535., cv2.COLOR_BGR2GRAY)[:, :, None]
    out = decode_float(_png(bgr16), 's', 1)
    assert out.dtype == np.float32 and np.array_equal(out, expected)  # not rounded to 8 bits first
    bgra = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    assert np.array_equal(decode_float(_png(bgra), 's', 3), bgra[:, :, :3].astype(np.float32) / 255.)
    with pytest.raises(ImageReadError, match=r'1 channel\(s\) but in_ch is 3: g\.png'):
        decode_float(_png(bgra[:, :, 0]), 'g.png', 3)


def test_encode_png_round_trip():
    img = np.random.default_rng(3).integers(0, 256, (5, 4), dtype=np.uint8)
    buf, shape = encode_png(img, compress_level=9)
    assert shape == (5, 4, 1) and np.array_equal(decode(buf, 's'), img)
    assert encode_png(np.zeros((3, 2, 3), np.uint8))[1] == (3, 2, 3)


# ----------------------------------------------------------------------------------- sniffing
def test_sniff_image_file(tmp_path):
    good, gray = str(tmp_path / 'good.png'), str(tmp_path / 'gray.png')
    cv2.imwrite(good, np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(gray, np.zeros((8, 8), np.uint8))
    assert sniff_image_file(good, 3) is None and sniff_image_file(gray, 1) is None
    assert sniff_image_file(gray, 3) == f'image has 1 channel(s) but in_ch is 3: {gray}'
    data = open(good, 'rb').read()
    (tmp_path / 'cut.png').write_bytes(data[:-20])
    assert sniff_image_file(str(tmp_path / 'cut.png'), 3).startswith('truncated or corrupt PNG')
    (tmp_path / 'empty.jpg').write_bytes(b'')
    assert sniff_image_file(str(tmp_path / 'empty.jpg'), 3) == f'empty image file: {tmp_path / "empty.jpg"}'
    (tmp_path / 'fake.jpg').write_bytes(b'GIF89a')
    assert 'not a JPEG file' in sniff_image_file(str(tmp_path / 'fake.jpg'), 3)
    assert sniff_image_file(str(tmp_path / 'gone.png'), 3).startswith('cannot read image')
