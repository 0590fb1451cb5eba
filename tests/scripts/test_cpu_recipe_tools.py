"""scripts/cpu_recipe/score_runs.py and report.py on a tiny generated run: which checkpoints and
keys are scored, the CPU-hours read from the training states, the cache, and the table and curve;
run_long.sh's choice of which runs to start; unseen_photos.py's input checks."""
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

NETWORK = {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 4}


def load_script(name):
    folder = os.path.join(REPO, 'scripts', 'cpu_recipe')
    sys.path.insert(0, folder)  # score_runs imports its neighbours by name
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """A run folder as BasicSR leaves it: option file, numbered checkpoints (raw and EMA), training
    states carrying the CPU budget; plus a 2-image hold-out LMDB."""
    root = tmp_path_factory.mktemp('cpu_recipe')
    tiny_data.write_folder(str(root / 'val_png'), 2, (20, 24), 3, seed=3)
    tiny_data.write_lmdb_from_folder(str(root / 'val_png'), str(root / 'val.lmdb'))
    folder = root / 'train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU'
    (folder / 'models').mkdir(parents=True)
    (folder / 'training_states').mkdir()
    (folder / 'train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU.yml').write_text(json.dumps({'network_g': NETWORK}))
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    for iteration, hours in ((2, 0.1), (4, 0.2)):
        torch.manual_seed(iteration)
        raw, ema = GIMSANet(in_channels=3, num_feat=4), GIMSANet(in_channels=3, num_feat=4)
        torch.save({'params': raw.state_dict(), 'params_ema': ema.state_dict()},
                   folder / 'models' / f'net_g_{iteration}.pth')
        torch.save({'iter': iteration, 'gimsanet_cpu_budget': {'spent_s': hours * 3600., 'limit_s': 3600.}},
                   folder / 'training_states' / f'{iteration}.state')
    return root, folder


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_score_runs_scores_the_chosen_checkpoint_and_keeps_what_it_has(run, monkeypatch):
    root, folder = run
    monkeypatch.chdir(REPO)  # the script works from the repository root; the test's cwd comes back after
    score_runs = load_script('score_runs')
    out = root / 'scores.csv'
    common = ['--runs', str(folder), '--data', str(root / 'val.lmdb'), '--out', str(out), '--dtype', 'fp32',
              '--threads', '1']
    score_runs.main(common + ['--iteration', '2', '--sigmas', '25'])
    rows = read(out)
    assert sorted((r['iteration'], r['weights'], r['sigma'], r['cpu_h']) for r in rows) == [
        ('2', 'params', '25', '0.1'), ('2', 'params_ema', '25', '0.1')]
    assert all(r['images'] == '2' and 5 < float(r['psnr']) < 60 for r in rows)

    score_runs.main(common + ['--sigmas', '25', '--keys', 'params'])  # default: the newest checkpoint only
    assert sorted((r['iteration'], r['weights']) for r in read(out)) == [
        ('2', 'params'), ('2', 'params_ema'), ('4', 'params')]

    from gimsanet_arch.inference import evaluate
    monkeypatch.setattr(evaluate, 'score_sets', lambda *a, **k: pytest.fail('a scored row was scored again'))
    score_runs.main(common + ['--all-checkpoints', '--sigmas', '25', '--keys', 'params'])
    with pytest.raises(SystemExit, match='no checkpoint of iteration 3'):
        score_runs.main(common + ['--iteration', '3'])


def test_report_table_and_curve(tmp_path):
    report = load_script('report')
    path = tmp_path / 'curve.csv'
    fields = ['run', 'iteration', 'cpu_h', 'weights', 'data', 'sigma', 'psnr', 'ssim', 'images']
    rows = [('train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU', 1000, 0.2, 'params', 30.5),
            ('train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU', 2000, 0.4, 'params', 31.0),
            ('train_GIMSANet-NoGrad_BlindColor_CBSD432_CPU', 2000, 0.4, 'params_ema', 30.0),
            ('train_GIMSANet_BlindColor_CBSD432_CPU', 1000, 0.2, 'params', 4.8),
            ('train_GIMSANet_BlindColor_CBSD432_CPU', 2000, 0.4, 'params', 29.0)]
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for run, it, hours, key, psnr in rows:
            writer.writerow(dict(run=run, iteration=it, cpu_h=hours, weights=key, data='val', sigma='25', psnr=psnr,
                                 ssim=0.8, images=32))
    table = report.last_checkpoint_table(report.read_rows(str(path)), baseline='GIMSANet-NoGrad')
    lines = table.splitlines()
    assert lines[2].startswith('| GIMSANet-NoGrad | 2,000 | 0.40 | 31.00 / 0.8000 | +0.00')
    assert lines[3].startswith('| GIMSANet (official map, raw) | 2,000 | 0.40 | 29.00 / 0.8000 | -2.00')
    png = tmp_path / 'curve.png'
    assert report.main(['curve', str(path), '--weights', 'params', 'params_ema', '--ymin', '27',
                        '--out', str(png)]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert report.main(['table', str(tmp_path / 'missing.csv')]) == 2


def test_curve_axis_names_the_images_it_was_scored_on():
    report = load_script('report')
    assert report.data_label(['datasets/BSD400/val.lmdb']) == 'BSD400 hold-out'
    assert report.data_label(['datasets/CBSD432/val.lmdb'] * 3) == 'CBSD432 hold-out'
    assert report.data_label(['datasets/CBSD68/test.lmdb']) == 'CBSD68/test.lmdb'


def test_run_long_skips_a_finished_run_and_resumes_a_parked_one(tmp_path):
    """run_long.sh in a copied tree, with a stand-in `basicsr` on PATH that records its arguments: a run
    with a final checkpoint and no training state is skipped (--auto_resume would refuse it with an
    error in the log), a parked run (a state) and a new run (no folder) are started."""
    import shutil
    import subprocess
    import time
    script = tmp_path / 'scripts' / 'cpu_recipe' / 'run_long.sh'
    script.parent.mkdir(parents=True)
    shutil.copy(os.path.join(REPO, 'scripts', 'cpu_recipe', 'run_long.sh'), script)
    options = tmp_path / 'options' / 'train' / 'GIMSANet' / 'cpu'
    options.mkdir(parents=True)
    for name in ('train_Finished_CPU', 'train_Parked_CPU', 'train_New_CPU'):
        (options / f'{name}.yml').write_text('name: x\n')
    (tmp_path / 'experiments' / 'train_Finished_CPU' / 'models').mkdir(parents=True)
    (tmp_path / 'experiments' / 'train_Finished_CPU' / 'models' / 'net_g_100.pth').write_bytes(b'w')
    for sub, file in (('models', 'net_g_50.pth'), ('training_states', '50.state')):
        (tmp_path / 'experiments' / 'train_Parked_CPU' / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / 'experiments' / 'train_Parked_CPU' / sub / file).write_bytes(b's')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls = tmp_path / 'calls.txt'
    (bin_dir / 'basicsr').write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / 'basicsr').chmod(0o755)
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    result = subprocess.run(['bash', str(script)], env=env, capture_output=True, text=True, check=True)
    assert 'skipped train_Finished_CPU: finished' in result.stdout
    deadline = time.time() + 10
    while time.time() < deadline and not (calls.exists() and len(calls.read_text().splitlines()) == 2):
        time.sleep(0.05)  # the runs start in the background (nohup ... &)
    started = sorted(line.split()[2] for line in calls.read_text().splitlines())
    folder = 'options/train/GIMSANet/cpu'
    assert started == [f'{folder}/train_New_CPU.yml', f'{folder}/train_Parked_CPU.yml']


def test_unseen_photos_checks_its_input_before_any_compute(monkeypatch, capsys):
    """The benchmark's bad --sigma and a missing bm3d package are one line each, before a network is built."""
    unseen = load_script('unseen_photos')
    with pytest.raises(SystemExit):
        unseen.main(['--sigma', '0'])
    assert '--sigma: expected a value in (0, 100], got 0.0' in capsys.readouterr().err
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'bm3d' else real_find_spec(name, *a))
    built = []
    from gimsanet_arch.inference import network
    monkeypatch.setattr(network, 'build', lambda *a, **k: built.append(a))
    with pytest.raises(SystemExit, match='needs the bm3d package: pip install bm3d'):
        unseen.main([])
    assert built == []
