"""scripts/compare.py (gimsanet_arch.commands.compare) on generated images with two tiny models (one from an option file with a
checkpoint, one from --model with random weights)."""
import csv
import os
import sys

import cv2
import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests'))
import tiny_data  # noqa: E402


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('compare')
    tiny_data.write_folder(str(root / 'imgs'), 2, (30, 35), 3, seed=7)
    from basicsr.archs import build_network
    net = build_network({'type': 'NAFNet', 'img_channel': 3, 'width': 4, 'enc_blk_nums': [1], 'middle_blk_num': 1,
                         'dec_blk_nums': [1]})
    torch.save({'params': net.state_dict()}, root / 'naf.pth')
    (root / 'naf_opt.yml').write_text(
        'name: nafopt\nnetwork_g: {type: NAFNet, img_channel: 3, width: 4, enc_blk_nums: [1], middle_blk_num: 1, '
        'dec_blk_nums: [1]}\n'
        f'path: {{pretrain_network_g: {root / "naf.pth"}, param_key_g: params, strict_load_g: true}}\n')
    (root / 'res.yml').write_text('network_g: {type: Restormer, inp_channels: 3, out_channels: 3, dim: 4, '
                                  'num_blocks: [1, 1, 1, 1], num_refinement_blocks: 1, heads: [1, 1, 1, 1]}\n'
                                  'val: {window_size: 8}\n')
    return root


def test_compare_cli(setup):
    root = setup
    cmd = [sys.executable, os.path.join(REPO, 'scripts', 'compare.py'), '--opt', str(root / 'naf_opt.yml'),
           '--model', f'resto={root / "res.yml"}', '--data', str(root / 'imgs'), '--sigmas', '15', '50',
           '--out', str(root / 'out'), '--crop', '24', '--tile', '64', '--time-size', '32', '--time-runs', '1',
           '--mac-size', '16', '--threads', '1', '--no-progress']
    import warm_python  # the script in a process forked from the warm interpreter
    res = warm_python.run(cmd[1:], root, timeout=300, env={'OMP_NUM_THREADS': '1'})
    assert res.returncode == 0, res.stdout + res.stderr
    assert '| Model' in res.stdout and 'nafopt' in res.stdout and 'resto' in res.stdout
    with open(root / 'out' / 'comparison.csv') as f:
        rows = list(csv.DictReader(f))
    assert {(r['model'], float(r['sigma'])) for r in rows} == {(m, s) for m in ('nafopt', 'resto') for s in (15., 50.)}
    for r in rows:
        assert 0 < float(r['psnr']) < 60 and 0 < float(r['ssim']) <= 1
        assert int(r['params']) > 0 and float(r['macs_per_pixel']) > 0 and float(r['ms_per_mp']) > 0
        assert r['images'] == '2'
    chart = cv2.imread(str(root / 'out' / 'psnr_chart.png'))
    grid = cv2.imread(str(root / 'out' / 'crops.png'))
    assert chart is not None and grid is not None
    # two sigma rows of (caption 22 + tile 64) with a 4 px gap; 4 columns (clean, noisy, 2 models)
    assert grid.shape[0] == 2 * (22 + 64) + 4 and grid.shape[1] == 4 * 64 + 3 * 4


def test_protocol_matches_evaluation_doc(setup):
    """The noisy input and metrics are the documented ones (seed 0 per image, RGB, uint8, crop 0)."""
    from basicsr.metrics import calculate_psnr
    from gimsanet_arch.inference import evaluate as cmp
    from gimsanet_prep.images import list_images
    path = list_images(str(setup / 'imgs'))[0]
    clean = cmp.read_clean(path, 3)
    rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.
    np.random.seed(0)
    expected = (rgb + np.random.normal(0, 25 / 255., rgb.shape)).astype(np.float32)
    from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
    np.testing.assert_array_equal(add_test_noise(clean, 25), expected)
    out = cmp.to_uint8(expected)
    p, _ = cmp.psnr_ssim(out, cmp.to_uint8(clean))
    assert p == pytest.approx(calculate_psnr(out, cmp.to_uint8(clean), crop_border=0))


def test_macs_identity_is_zero_and_conv_counts():
    from gimsanet_arch.inference import cost
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)
    assert cost.macs_per_pixel(conv, 3, size=16) == pytest.approx(3 * 3 * 9)
    assert cost.count_params(conv) == 81


def test_chart_needs_matplotlib_and_says_so(tmp_path, monkeypatch):
    from gimsanet_arch.commands import report
    rows = [dict(model='a', data='d', sigma=15, psnr=30.0), dict(model='b', data='d', sigma=15, psnr=31.0)]
    if report.pyplot() is not None:
        assert report.write_psnr_chart(rows, str(tmp_path / 'c.png')) == str(tmp_path / 'c.png')
        assert cv2.imread(str(tmp_path / 'c.png')) is not None
    monkeypatch.setattr(report, 'pyplot', lambda: None)
    assert report.write_psnr_chart(rows, str(tmp_path / 'none.png')) is None
    assert not (tmp_path / 'none.png').exists()
