"""scripts/cpu_recipe/results_table.py: scores a checkpoint and BM3D on the test set of its channel
count at σ 15/25/50 into a cache, does not score a cached method again, and puts the table between
the README's results markers. Tiny generated LMDBs stand in for CBSD68/BSD68; a blur stands in for
BM3D (the optional ``bm3d`` package is not needed)."""
import csv
import importlib.util
import json
import os
import sys

import cv2
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests'))
import tiny_data  # noqa: E402


@pytest.fixture(scope='module')
def results_table():
    spec = importlib.util.spec_from_file_location('results_table',
                                                  os.path.join(REPO, 'scripts', 'cpu_recipe', 'results_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def work(tmp_path, results_table, monkeypatch):
    monkeypatch.chdir(REPO)  # the script works from the repository root; the test's cwd comes back after
    for channels, name in ((3, 'CBSD68'), (1, 'BSD68')):
        folder = tmp_path / f'{name}_png'
        tiny_data.write_folder(str(folder), 2, (24, 20), channels, seed=channels)
        tiny_data.write_lmdb_from_folder(str(folder), str(tmp_path / f'{name}.lmdb'))
    monkeypatch.setattr(results_table, 'SETS', {3: ('CBSD68', str(tmp_path / 'CBSD68.lmdb')),
                                                1: ('BSD68', str(tmp_path / 'BSD68.lmdb'))})
    monkeypatch.setattr(results_table, 'bm3d_denoiser', lambda: lambda noisy, sigma: cv2.GaussianBlur(
        noisy, (5, 5), 1.).reshape(noisy.shape))
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    from gimsanet_arch.training.safetensors_io import save_safetensors_checkpoint
    torch.manual_seed(0)
    weights = tmp_path / 'Tiny_BlindColor.safetensors'
    save_safetensors_checkpoint({'params': GIMSANet(in_channels=3, num_feat=4).state_dict()}, str(weights))
    (tmp_path / 'Tiny_BlindColor.json').write_text(json.dumps({'cpu_hours': 1.5}))
    readme = tmp_path / 'README.md'
    readme.write_text('# X\n\n## Results\n\n<!-- results:begin -->\nold table\n<!-- results:end -->\n\n## Next\nkept\n')
    return tmp_path, weights, readme


def test_table_scores_caches_and_fills_the_readme(work, results_table, monkeypatch):
    root, weights, readme = work
    args = ['--weights', str(weights), '--bm3d', 'CBSD68', '--scores', str(root / 'scores.csv'),
            '--out', str(root / 'table.md'), '--readme', str(readme), '--threads', '1']
    assert results_table.main(args) == 0
    with open(root / 'scores.csv') as f:
        rows = list(csv.DictReader(f))
    assert sorted((r['method'], r['data'], int(r['sigma'])) for r in rows) == sorted(
        (m, 'CBSD68', s) for m in ('Tiny_BlindColor', 'BM3D') for s in (15, 25, 50))
    for r in rows:
        assert 0 < float(r['ssim']) <= 1 and 5 < float(r['psnr']) < 60 and r['images'] == '2'
    by = {(r['method'], int(r['sigma'])): float(r['psnr']) for r in rows}
    assert by[('BM3D', 15)] > by[('BM3D', 50)]  # the noisier input scores lower
    assert {r['cpu_h'] for r in rows if r['method'] == 'Tiny_BlindColor'} == {'1.5'}

    text = readme.read_text()
    assert 'old table' not in text and text.endswith('<!-- results:end -->\n\n## Next\nkept\n')
    table = text[text.index('<!-- results:begin -->'):text.index('<!-- results:end -->')]
    assert '| Tiny_BlindColor (this project) | CBSD68 | 1.5 |' in table
    assert '| BM3D (this project) | CBSD68 |' in table
    assert 'CDnCNN-B, published' in table and 'DnCNN-B, published' in table
    assert (root / 'table.md').read_text().strip() == table.replace('<!-- results:begin -->', '').strip()

    def no_scoring(*a, **k):
        raise AssertionError('a cached method was scored again')
    from gimsanet_arch.inference import evaluate
    monkeypatch.setattr(evaluate, 'score_sets', no_scoring)
    assert results_table.main(args) == 0  # everything cached
    with open(root / 'scores.csv') as f:
        assert len(list(csv.DictReader(f))) == len(rows)


def test_bm3d_on_the_gray_set_alone(work, results_table):
    root, _, _ = work
    assert results_table.main(['--bm3d', 'BSD68', '--scores', str(root / 's.csv'), '--out', str(root / 't.md'),
                               '--threads', '1']) == 0
    with open(root / 's.csv') as f:
        assert {(r['method'], r['data']) for r in csv.DictReader(f)} == {('BM3D', 'BSD68')}
