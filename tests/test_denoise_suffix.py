"""``gimsanet-denoise --suffix`` is appended to a file name: one with a path separator (``/../../x``
wrote outside ``-o``) is refused in one line before any image is read (issue 32)."""
import os

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.commands import denoise


def _listing(folder):
    return sorted(os.path.relpath(os.path.join(r, n), folder)
                  for r, dirs, names in os.walk(folder) for n in names + dirs)


@pytest.mark.parametrize('suffix', ['/../../x', '_a/b', '\\..\\x', 'a\0b'], ids=repr)
def test_a_suffix_with_a_path_separator_is_refused(tmp_path, monkeypatch, capsys, suffix):
    work = tmp_path / 'work'
    (work / 'photos').mkdir(parents=True)
    cv2.imwrite(str(work / 'photos' / 'a.png'), np.full((12, 10, 3), 100, np.uint8))
    torch.save({'params': GIMSANet(num_feat=4).state_dict()}, work / 'tiny.pth')
    monkeypatch.chdir(work)
    before = _listing(tmp_path)
    code = denoise.main(['photos/a.png', '-o', 'out', '--suffix', suffix, '--arch', 'GIMSANet', '--arch-args',
                         '{num_feat: 4}', '--weights', 'tiny.pth', '--no-progress', '--device', 'cpu'])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith('gimsanet-denoise: error: --suffix') and repr(suffix) in lines[0], lines[0]
    assert _listing(tmp_path) == before  # nothing written, here or above
