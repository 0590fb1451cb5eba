"""gimsanet_prep.crops: BasicSR's sub-image positions and order."""
import numpy as np
import pytest

from gimsanet_prep.crops import crop_key, crop_positions, extract_subimages


def _basicsr_space(length, crop, step, thresh):
    # the code of BasicSR's scripts/data_preparation/extract_subimages.py
    space = np.arange(0, length - crop + 1, step)
    if length - (space[-1] + crop) > thresh:
        space = np.append(space, length - crop)
    return list(space)


@pytest.mark.parametrize('length,crop,step,thresh', [(64, 32, 24, 0), (3000, 512, 384, 0), (5328, 512, 384, 0),
                                                     (180, 128, 64, 0), (100, 32, 16, 10), (64, 64, 16, 0)])
def test_crop_positions_match_basicsr(length, crop, step, thresh):
    assert crop_positions(length, crop, step, thresh) == _basicsr_space(length, crop, step, thresh)


def test_extract_subimages_order_content_and_small_images():
    img = np.arange(64 * 48, dtype=np.uint32).reshape(64, 48).astype(np.uint8)
    crops = extract_subimages(img, 32, 24)
    assert [i for i, _ in crops] == list(range(1, 7))  # rows [0, 24, 32] x cols [0, 16]
    assert np.array_equal(crops[1][1], img[0:32, 16:48])
    assert np.array_equal(crops[2][1], img[24:56, 0:32])
    assert crop_key('0001_SRGB_010', 3) == '0001_SRGB_010_s003'
    small = np.zeros((20, 40, 3), np.uint8)
    assert len(extract_subimages(small, 32, 24)) == 1
    assert extract_subimages(small, 32, 24, keep_small=False) == []
