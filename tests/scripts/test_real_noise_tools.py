"""scripts/real_noise/: score_real.py (hold-out with each run's own noise, PolyU/Nam protocol, table) on a
tiny run and tiny paired sets, and add_gradient_branch.py."""
import csv
import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests'))
import tiny_data  # noqa: E402

NETWORK = {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 4, 'grad_mode': 'none'}


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'scripts', 'real_noise', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('real_noise')
    tiny_data.write_folder(str(root / 'val_png'), 2, (24, 32), 3, seed=3)
    tiny_data.write_lmdb_from_folder(str(root / 'val_png'), str(root / 'val.lmdb'))
    folder = root / 'train_GIMSANet-NoGrad_RealCamera_CBSD432_CPU'
    (folder / 'models').mkdir(parents=True)
    (folder / 'training_states').mkdir()
    opt = {'network_g': NETWORK, 'path': {'pretrain_network_g': None},
           'datasets': {'train': {'type': 'CameraNoiseDataset', 'noise_model': 'srgb', 'jpeg_prob': 0}}}
    (folder / 'train_GIMSANet-NoGrad_RealCamera_CBSD432_CPU.yml').write_text(json.dumps(opt))
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    for iteration, hours in ((2, 0.1), (4, 0.2)):
        torch.manual_seed(iteration)
        net = GIMSANet(**{k: v for k, v in NETWORK.items() if k != 'type'})
        torch.save({'params': net.state_dict(), 'params_ema': net.state_dict()}, folder / 'models' / f'net_g_{iteration}.pth')
        torch.save({'iter': iteration, 'gimsanet_cpu_budget': {'spent_s': hours * 3600., 'limit_s': 3600.}},
                   folder / 'training_states' / f'{iteration}.state')
    return root, folder


def test_holdout_scores_with_the_runs_own_noise_and_keeps_its_rows(run, monkeypatch):
    root, folder = run
    score_real = load_script('score_real')
    out = root / 'holdout.csv'
    common = ['holdout', '--runs', str(folder), '--data', str(root / 'val.lmdb'), '--out', str(out), '--dtype', 'fp32']
    score_real.main(common + ['--all-checkpoints', '--keys', 'params'])
    rows = read(out)
    assert [(r['iteration'], r['weights'], r['cpu_h']) for r in rows] == [('2', 'params', '0.1'), ('4', 'params', '0.2')]
    assert all(r['data'].endswith(':srgb') and r['images'] == '2' and 5 < float(r['psnr']) < 60 for r in rows)
    from gimsanet_arch.inference import evaluate
    monkeypatch.setattr(evaluate, 'psnr_ssim', lambda *a: pytest.fail('a scored row was scored again'))
    score_real.main(common + ['--all-checkpoints', '--keys', 'params'])


def test_real_sets_by_the_protocol_and_the_table(run, monkeypatch, tmp_path):
    root, folder = run
    score_real = load_script('score_real')
    sets = {name: str(tiny_data.write_paired(str(tmp_path / name), n, 24, seed=n, sigma=6, lmdb=False))
            for name, n in (('PolyU', 3), ('Nam', 2))}
    for name, folder_ in sets.items():  # the layout polyu.py / nam.py write: input.lmdb, gt.lmdb
        for part in ('input', 'gt'):
            tiny_data.write_lmdb_from_folder(os.path.join(folder_, part), os.path.join(folder_, f'{part}.lmdb'))
    monkeypatch.setattr(score_real, 'SETS', sets)
    out = tmp_path / 'real.csv'
    score_real.main(['real', '--noisy', '--checkpoint', f'{folder}@2:params', '--out', str(out), '--dtype', 'fp32'])
    rows = read(out)
    assert sorted({(r['method'], r['set']) for r in rows}) == [
        ('Noisy input', 'Nam'), ('Noisy input', 'PolyU'),
        (f'{folder.name}@2:params', 'Nam'), (f'{folder.name}@2:params', 'PolyU')]
    import cv2
    noisy = cv2.imread(os.path.join(sets['Nam'], 'input', '0000.png')).astype(np.float64)
    clean = cv2.imread(os.path.join(sets['Nam'], 'gt', '0000.png')).astype(np.float64)
    expected = 10 * np.log10(255. ** 2 / np.mean((noisy - clean) ** 2))  # whole image, all channels
    got = next(r for r in rows if r['method'] == 'Noisy input' and r['set'] == 'Nam' and r['image'] == '0000')
    assert abs(float(got['psnr']) - expected) < 1e-3
    assert abs(float(got['noise_rms']) - np.sqrt(np.mean((noisy - clean) ** 2))) < 1e-2
    table = score_real.table(read(out), expected={'PolyU': 3, 'Nam': 2})
    line = next(t for t in table.splitlines() if t.startswith('| Noisy input'))
    polyu = np.mean([float(r['psnr']) for r in rows if r['method'] == 'Noisy input' and r['set'] == 'PolyU'])
    assert line.startswith(f'| Noisy input | {polyu:.2f} / ')
    assert '37.81' in table  # the published CC15 rows, labelled as published
    assert '(3 of 100 images)' in score_real.table(read(out))  # an incomplete set is not averaged as if whole
    with pytest.raises(SystemExit, match='no checkpoint of iteration 3'):
        score_real.main(['real', '--checkpoint', f'{folder}@3', '--out', str(out)])


def test_table_replaces_the_readme_block(tmp_path):
    score_real = load_script('score_real')
    csv_path = tmp_path / 'real.csv'
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=score_real.REAL_FIELDS)
        writer.writeheader()
        writer.writerow(dict(method='Noisy input', set='Nam', image='a', psnr=33.0, ssim=0.8, noise_rms=5))
    readme = tmp_path / 'README.md'
    readme.write_text(f'top\n{score_real.TABLE_BEGIN}\nold\n{score_real.TABLE_END}\nbottom\n')
    score_real.main(['table', '--csv', str(csv_path), '--readme', str(readme)])
    text = readme.read_text()
    assert text.startswith('top\n') and text.endswith('bottom\n') and 'old' not in text and '| Noisy input |' in text
    readme.write_text('no markers\n')
    with pytest.raises(SystemExit, match='no .* block'):
        score_real.main(['table', '--csv', str(csv_path), '--readme', str(readme)])


def test_add_gradient_branch_script_writes_a_loadable_start_and_keeps_an_existing_file(tmp_path, capsys):
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    script = load_script('add_gradient_branch')
    plain = GIMSANet(num_feat=4, grad_mode='none')
    torch.save({'params': plain.state_dict()}, tmp_path / 'plain.pth')
    out = tmp_path / 'grad.pth'
    assert script.main(['--weights', str(tmp_path / 'plain.pth'), '--out', str(out)]) == 0
    branch = GIMSANet(num_feat=4, grad_mode='official')
    branch.load_state_dict(torch.load(out, weights_only=True)['params'], strict=True)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(branch(x), plain(x), rtol=1e-5, atol=1e-6)
    before = out.read_bytes()
    assert script.main(['--weights', str(tmp_path / 'plain.pth'), '--out', str(out)]) == 0
    assert out.read_bytes() == before and 'kept' in capsys.readouterr().out
    assert script.main(['--weights', str(out), '--out', str(tmp_path / 'again.pth')]) == 2
    assert 'already have a gradient branch' in capsys.readouterr().err
