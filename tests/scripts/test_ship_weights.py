"""scripts/cpu_recipe/ship_weights.py on a tiny generated run: the weights chosen on the hold-out
ship with a complete record, the test set is scored after the choice, shipping again under the same
name re-scores (the cache keys on the file's checksum), and an interrupted ship leaves the old pair."""
import csv
import importlib.util
import json
import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests'))
import tiny_data  # noqa: E402

RUN = 'train_TinyShip_BlindColor_CPU'


def load_script(name):
    folder = os.path.join(REPO, 'scripts', 'cpu_recipe')
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A run folder (option file, checkpoint 4 with raw and EMA weights, its training state), a hold-out
    score CSV in which EMA leads at sigma 25, and a 2-image LMDB standing in for CBSD68."""
    monkeypatch.chdir(REPO)  # the script works from the repository root; the test's cwd comes back after
    tiny_data.write_folder(str(tmp_path / 'test_png'), 2, (20, 24), 3, seed=5)
    tiny_data.write_lmdb_from_folder(str(tmp_path / 'test_png'), str(tmp_path / 'CBSD68.lmdb'))
    results_table = load_script('results_table')
    monkeypatch.setitem(sys.modules, 'results_table', results_table)  # the module ship_weights imports
    monkeypatch.setattr(results_table, 'SETS', {3: ('CBSD68', str(tmp_path / 'CBSD68.lmdb'))})

    run = tmp_path / RUN
    (run / 'models').mkdir(parents=True)
    (run / 'training_states').mkdir()
    opt = {'network_g': {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 4},
           'datasets': {'train': {'dataroot_gt': str(tmp_path / 'train_minus_val.lmdb'), 'sigma_range': [0, 55],
                                  'gt_size': 16, 'batch_size_per_gpu': 2}},
           'train': {'ema_decay': 0.999}}
    (run / f'{RUN}.yml').write_text(json.dumps(opt))
    (run / 'train_TinyShip_20261204.log').write_text('iter 4 l_pix 0.1\n')
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    torch.manual_seed(0)
    ckpt = {'params': GIMSANet(in_channels=3, num_feat=4).state_dict(),
            'params_ema': GIMSANet(in_channels=3, num_feat=4).state_dict()}
    torch.save(ckpt, run / 'models' / 'net_g_4.pth')
    torch.save({'iter': 4, 'gimsanet_cpu_budget': {'spent_s': 0.25 * 3600., 'limit_s': 3600.}},
               run / 'training_states' / '4.state')
    holdout = tmp_path / 'holdout.csv'
    with open(holdout, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['run', 'iteration', 'cpu_h', 'weights', 'data', 'sigma', 'psnr', 'ssim', 'images'])
        for key, psnr in (('params', 28.0), ('params_ema', 28.5)):
            for sigma in (15, 25, 50):
                writer.writerow([RUN, 4, 0.25, key, 'val.lmdb', sigma, psnr + 25 - sigma / 2, 0.8, 2])
    args = ['--run', str(run), '--name', 'Tiny_BlindColor', '--holdout-scores', str(holdout),
            '--test-scores', str(tmp_path / 'scores.csv'), '--weights-dir', str(tmp_path / 'weights'),
            '--logs-dir', str(tmp_path / 'logs')]
    return tmp_path, ckpt, args, results_table


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_ship_chooses_on_the_hold_out_and_records_the_test_scores(work):
    root, ckpt, args, _ = work
    ship_weights = load_script('ship_weights')
    assert ship_weights.main(args) == 0

    from gimsanet_arch.inference.shipped_weights import sha256
    from gimsanet_arch.training.safetensors_io import load_safetensors_checkpoint
    weights = root / 'weights' / 'Tiny_BlindColor.safetensors'
    shipped = load_safetensors_checkpoint(str(weights))
    assert list(shipped) == ['params']  # one group, the chosen weights under BasicSR's usual key
    assert shipped['params'].keys() == ckpt['params_ema'].keys()
    assert all(torch.equal(shipped['params'][k], v.float()) for k, v in ckpt['params_ema'].items())  # EMA led

    record = json.loads((root / 'weights' / 'Tiny_BlindColor.json').read_text())
    assert record['iterations'] == 4 and record['cpu_hours'] == 0.25 and record['weights'].startswith('EMA')
    assert record['sha256'] == sha256(str(weights))
    assert set(record['test']) == {'CBSD68 sigma 15', 'CBSD68 sigma 25', 'CBSD68 sigma 50'}
    assert 'sigma 25: PSNR 41.00 dB' in record['validation']  # the EMA row: 28.5 + 25 - 25 / 2
    rows = read_rows(root / 'scores.csv')
    assert {(r['method'], r['sha256'], r['cpu_h']) for r in rows} == {('Tiny_BlindColor', record['sha256'], '0.25')}
    assert (root / 'logs' / f'{RUN}.log').read_text() == 'iter 4 l_pix 0.1\n'
    assert sorted(p.name for p in (root / 'weights').iterdir()) == ['Tiny_BlindColor.json',
                                                                     'Tiny_BlindColor.safetensors']


def test_shipping_again_under_the_same_name_scores_the_new_file(work):
    root, ckpt, args, _ = work
    ship_weights = load_script('ship_weights')
    assert ship_weights.main(args) == 0
    first = json.loads((root / 'weights' / 'Tiny_BlindColor.json').read_text())
    assert ship_weights.main(args + ['--key', 'params']) == 0
    second = json.loads((root / 'weights' / 'Tiny_BlindColor.json').read_text())
    assert second['weights'] == 'raw (no EMA)' and second['sha256'] != first['sha256']
    rows = read_rows(root / 'scores.csv')
    assert len(rows) == 3 and {r['sha256'] for r in rows} == {second['sha256']}  # old rows replaced
    assert second['test'] != first['test']  # different weights, scored anew


def test_an_interrupted_ship_leaves_the_old_pair(work, monkeypatch):
    root, _, args, results_table = work
    ship_weights = load_script('ship_weights')
    assert ship_weights.main(args) == 0
    before = {p.name: p.read_bytes() for p in (root / 'weights').iterdir()}

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(results_table.Scorer, 'network', interrupted)
    with pytest.raises(KeyboardInterrupt):
        ship_weights.main(args + ['--key', 'params'])
    assert {p.name: p.read_bytes() for p in (root / 'weights').iterdir()} == before
