"""The embedded demo (README command 1), run for its default length: slow (about 4-5 minutes on
2 CPU cores), so it runs with ``python -m pytest -m slow``."""
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, run_basicsr

DEMO_OPT = osp.join(REPO_ROOT, 'options', 'train', 'GIMSANet', 'train_GIMSANet_demo_skimage.yml')


@pytest.mark.slow
def test_demo_denoises_clearly_better_than_the_noisy_input(tmp_path):
    made = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'scripts', 'make_demo_data.py')], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    result = run_basicsr(['train', '-opt', DEMO_OPT], tmp_path, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    denoised = [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', log)]
    noisy = [float(v) for v in re.findall(r'noisy input \(before denoising\): psnr: ([0-9.]+)', log)]
    assert denoised and noisy
    print(f'demo: validation PSNR {denoised[-1]:.2f} dB, noisy input {noisy[-1]:.2f} dB')
    assert denoised[-1] > noisy[-1] + 6  # measured: 30.10 vs 20.25 dB
    assert (tmp_path / 'experiments' / 'GIMSANet_demo_skimage' / 'models' / 'net_g_latest.pth').exists()
