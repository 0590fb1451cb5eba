"""scripts/data_preparation/*.py run as subprocesses on tiny fake datasets in the real layouts."""
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io

import gimsanet_arch  # noqa: F401  (before basicsr)
from basicsr.data.paired_image_dataset import PairedImageDataset
from gimsanet_prep.lmdb_writer import lmdb_status
from gimsanet_prep.verify import read_lmdb_image, read_meta_info, verify_lmdb, verify_paired_lmdbs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(REPO_ROOT, 'scripts', 'data_preparation')
KILL_AFTER = os.path.join(REPO_ROOT, 'tests', 'scripts', 'kill_after_records.py')


def run_script(name, args=(), cwd=None, env=None, check=True, kill_after=None):
    """Run a preparation script; ``kill_after=N``: SIGKILLed once N records reached every LMDB."""
    full_env = dict(os.environ, PYTHONWARNINGS='ignore')
    full_env.update(env or {})
    wrapper = [KILL_AFTER, str(kill_after)] if kill_after else []
    proc = subprocess.run([sys.executable, *wrapper, os.path.join(SCRIPTS, f'{name}.py'), '--no-progress',
                           '--workers', '2', *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def meta(path):
    return read_meta_info(path)


def mtimes(*paths):
    out = {}
    for path in paths:
        for name in os.listdir(path):
            out[os.path.join(path, name)] = os.stat(os.path.join(path, name)).st_mtime_ns
    return out


def paired_dataset(lq, gt):
    return PairedImageDataset({'dataroot_lq': lq, 'dataroot_gt': gt, 'io_backend': {'type': 'lmdb'},
                               'phase': 'val', 'scale': 1})


def _rgb(tensor):
    """(3,H,W) float tensor from BasicSR's dataset -> uint8 HWC RGB."""
    return np.round(tensor.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ fake datasets
def write(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img)


def make_bsd(root, rng, bsds500=False):
    """BSD400 gray PNGs, CBSD432 colour JPGs (a flat folder, or with ``bsds500`` a BSDS500 layout
    train/val/test whose val part also holds the CBSD68 images as JPGs), BSD68 gray PNGs, CBSD68
    colour PNGs (64x64)."""
    raw = os.path.join(root, 'datasets', 'raw')
    for i in range(1, 4):
        write(os.path.join(raw, 'BSD400', f'test_{i:03d}.png'), rng.integers(0, 256, (64, 64), dtype=np.uint8))
        folder = os.path.join(raw, 'BSDS500', ('train', 'val', 'test')[i - 1]) if bsds500 else os.path.join(raw, 'CBSD432')
        write(os.path.join(folder, f'{100000 + i}.jpg'), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for i in range(1, 3):
        write(os.path.join(raw, 'BSD68', f'test{i:03d}.png'), rng.integers(0, 256, (64, 48), dtype=np.uint8))
        test_img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        write(os.path.join(raw, 'CBSD68', f'{200000 + i}.png'), test_img)
        if bsds500:  # as in the real data: the test PNG decodes to the pixels of a BSDS500 val JPG
            jpg = os.path.join(raw, 'BSDS500', 'val', f'{200000 + i}.jpg')
            write(jpg, test_img)
            write(os.path.join(raw, 'CBSD68', f'{200000 + i}.png'), cv2.imread(jpg))
    return raw


def make_sidd(root, rng, scenes=2, blocks=(2, 3)):
    """SIDD-Medium sRGB scene folders (64x80) and the validation .mat files (small blocks)."""
    data = os.path.join(root, 'datasets', 'raw', 'SIDD_Medium_Srgb', 'Data')
    for s in range(1, scenes + 1):
        scene = os.path.join(data, f'{s:04d}_001_S6_00100_00060_3200_L')
        for v in ('010', '011'):
            gt = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
            noisy = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
            write(os.path.join(scene, f'{s:04d}_GT_SRGB_{v}.PNG'), gt)
            write(os.path.join(scene, f'{s:04d}_NOISY_SRGB_{v}.PNG'), noisy)
    val = os.path.join(root, 'datasets', 'raw', 'SIDD')
    os.makedirs(val, exist_ok=True)
    gt = rng.integers(0, 256, (*blocks, 16, 16, 3), dtype=np.uint8)  # RGB, as SIDD's
    noisy = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    scipy.io.savemat(os.path.join(val, 'ValidationNoisyBlocksSrgb.mat'), {'ValidationNoisyBlocksSrgb': noisy})
    scipy.io.savemat(os.path.join(val, 'ValidationGtBlocksSrgb.mat'), {'ValidationGtBlocksSrgb': gt})
    return data, noisy, gt


def make_real_mean(folder, names, ext, rng, mean_folder=None):
    for name in names:
        gt = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        write(os.path.join(folder, f'{name}_real.{ext}'), 255 - gt)
        write(os.path.join(mean_folder or folder, f'{name}_mean.{ext}'), gt)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------------------------ bsd.py
def test_bsd_whole_images_lmdb_and_folders(tmp_path, rng):
    raw = make_bsd(tmp_path, rng)
    proc = run_script('bsd', ['--verify', '--format', 'both', '--any-count'], cwd=tmp_path)
    out = tmp_path / 'datasets'
    expected = {'BSD400/train.lmdb': (3, (64, 64, 1)), 'CBSD432/train.lmdb': (3, (64, 64, 3)),
                'BSD68/test.lmdb': (2, (64, 48, 1)), 'CBSD68/test.lmdb': (2, (48, 64, 3))}
    for rel, (n, shape) in expected.items():
        entries = meta(str(out / rel))
        assert len(entries) == n and {s for _, s, _ in entries} == {shape}, rel
        assert f'verified datasets/{rel}: {n} records OK' in proc.stdout
    assert [k for k, _, _ in meta(str(out / 'BSD400/train.lmdb'))] == ['test_001', 'test_002', 'test_003']
    # values are the decoded source pixels (the JPGs decoded once, stored losslessly)
    src = cv2.imread(os.path.join(raw, 'CBSD432', '100002.jpg'))
    assert np.array_equal(read_lmdb_image(str(out / 'CBSD432/train.lmdb'), '100002'), src)
    src = cv2.imread(os.path.join(raw, 'BSD400', 'test_002.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(read_lmdb_image(str(out / 'BSD400/train.lmdb'), 'test_002'), src)
    assert sorted(os.listdir(out / 'BSD68/test')) == ['.build_info.json', 'test001.png', 'test002.png']
    assert sorted(os.listdir(out / 'CBSD68/test')) == ['.build_info.json', '200001.png', '200002.png']
    assert 'BSD400: 3 images (standard: 400)' in proc.stdout

    # re-run: nothing is rewritten
    lmdbs = [str(out / rel) for rel in expected]
    before = mtimes(*lmdbs, str(out / 'BSD68/test'))
    proc = run_script('bsd', ['--format', 'both', '--any-count'], cwd=tmp_path)
    assert proc.stderr.count('complete already, left alone') == 6
    assert mtimes(*lmdbs, str(out / 'BSD68/test')) == before


def test_bsd_sub_images_and_dfwb(tmp_path, rng):
    make_bsd(tmp_path, rng)
    run_script('bsd', ['--sets', 'BSD400', 'CBSD432', '--crop-size', '32', '--step', '24', '--verify', '--any-count'],
               cwd=tmp_path)
    entries = meta(str(tmp_path / 'datasets/BSD400/train_crops.lmdb'))
    assert len(entries) == 3 * 9 and entries[0][0] == 'test_001_s001' and entries[0][1] == (32, 32, 1)
    assert len(meta(str(tmp_path / 'datasets/CBSD432/train_crops.lmdb'))) == 27
    # other crop parameters against an existing output: refused, not silently reused
    proc = run_script('bsd', ['--sets', 'BSD400', '--crop-size', '32', '--step', '16', '--any-count'], cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and 'built with other parameters' in proc.stderr
    # DFWB: several folders into one LMDB, keys prefixed by the folder
    div2k = tmp_path / 'datasets/raw/DIV2K_train_HR'
    write(div2k / '0001.png', rng.integers(0, 256, (80, 72, 3), dtype=np.uint8))
    run_script('bsd', ['--sets', 'DFWB', '--input', str(div2k), 'datasets/raw/BSD400', '--crop-size', '64',
                       '--step', '48', '--verify'], cwd=tmp_path)
    keys = [k for k, _, _ in meta(str(tmp_path / 'datasets/DFWB/train_crops.lmdb'))]
    assert keys[:4] == ['DIV2K_train_HR_0001_s001', 'DIV2K_train_HR_0001_s002', 'DIV2K_train_HR_0001_s003',
                        'DIV2K_train_HR_0001_s004']
    assert 'BSD400_test_003_s001' in keys and len(keys) == 4 + 3


def test_bsd_missing_inputs_listed_together(tmp_path, rng):
    make_bsd(tmp_path, rng)
    import shutil
    shutil.rmtree(tmp_path / 'datasets/raw/CBSD432')
    for name in os.listdir(tmp_path / 'datasets/raw/BSD68'):
        os.remove(tmp_path / 'datasets/raw/BSD68' / name)
    proc = run_script('bsd', [], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'CBSD432: datasets/raw/BSDS500: folder not found' in proc.stderr
    assert 'BSD68: datasets/raw/BSD68: no images' in proc.stderr
    assert not os.path.exists(tmp_path / 'datasets/BSD400')


def test_bsd_cbsd432_from_bsds500_leaves_out_cbsd68(tmp_path, rng):
    raw = make_bsd(tmp_path, rng, bsds500=True)
    proc = run_script('bsd', ['--sets', 'CBSD432', '--any-count', '--verify'], cwd=tmp_path)
    assert 'CBSD432: 5 BSDS500 images, 2 left out (CBSD68 test images), 3 kept' in proc.stdout
    keys = [k for k, _, _ in meta(str(tmp_path / 'datasets/CBSD432/train.lmdb'))]
    assert keys == ['100001', '100002', '100003']  # from train/, val/ and test/
    # without --any-count a non-standard count is refused before anything is written
    proc = run_script('bsd', ['--sets', 'CBSD432', '--overwrite'], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'CBSD432: found 3 images in datasets/raw/BSDS500, the standard set has 432' in proc.stderr
    # BSDS500 minus CBSD68 needs CBSD68
    import shutil
    shutil.rmtree(os.path.join(raw, 'CBSD68'))
    proc = run_script('bsd', ['--sets', 'CBSD432', '--any-count', '--output', 'other.lmdb'], cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and 'needs the CBSD68 images' in proc.stderr
    assert not os.path.exists(tmp_path / 'other.lmdb')


@pytest.mark.parametrize('train_set, test_set, mode', [('CBSD432', 'CBSD68', cv2.IMREAD_COLOR),
                                                       ('BSD400', 'BSD68', cv2.IMREAD_GRAYSCALE)])
def test_bsd_refuses_test_images_in_a_training_set(tmp_path, rng, train_set, test_set, mode):
    raw = make_bsd(tmp_path, rng)
    test_file = sorted(os.listdir(os.path.join(raw, test_set)))[1]
    # the same pixels under another name and format: found by decoded pixels, not by name or bytes
    copy = os.path.join(raw, train_set, 'renamed.png' if train_set == 'CBSD432' else 'test_099.png')
    write(copy, cv2.imread(os.path.join(raw, test_set, test_file), mode))
    proc = run_script('bsd', ['--sets', train_set, '--any-count'], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    line = [ln for ln in proc.stderr.splitlines() if 'same pixels as test images' in ln]
    assert len(line) == 1 and f'{copy[len(str(tmp_path)) + 1:]} = {test_set}/{test_file}' in line[0]
    assert not os.path.exists(tmp_path / 'datasets' / train_set)


def test_holdout_split_of_a_standard_set(tmp_path):
    from gimsanet_prep.testsets import read_split, split_items
    val = read_split('CBSD432')
    assert len(val) == len(set(val)) == 32 and len(read_split('BSD400')) == 32
    items = [(k, f'{k}.jpg') for k in sorted(val + [f'x{i}' for i in range(5)])]
    train, held = split_items(items, val)
    assert [k for k, _ in held] == sorted(val) and [k for k, _ in train] == [f'x{i}' for i in range(5)]
    assert split_items(items[1:], val) is None  # a listed key missing: not the standard set


def test_bsd_builds_the_holdout_when_every_listed_key_is_present(tmp_path, rng):
    from gimsanet_prep.testsets import read_split
    raw = make_bsd(tmp_path, rng)
    for key in read_split('BSD400')[:32]:
        write(os.path.join(raw, 'BSD400', f'{key}.png'), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    run_script('bsd', ['--sets', 'BSD400', '--any-count'], cwd=tmp_path)
    out = tmp_path / 'datasets/BSD400'
    assert len(meta(str(out / 'train.lmdb'))) == 3 + 32
    assert sorted(k for k, _, _ in meta(str(out / 'val.lmdb'))) == sorted(read_split('BSD400'))
    assert [k for k, _, _ in meta(str(out / 'train_minus_val.lmdb'))] == ['test_001', 'test_002', 'test_003']


# ------------------------------------------------------------------------------------ sidd.py
def test_sidd_train_and_val(tmp_path, rng):
    data, noisy, gt = make_sidd(tmp_path, rng)
    proc = run_script('sidd', ['--crop-size', '32', '--step', '24', '--png', '--verify'], cwd=tmp_path)
    out = tmp_path / 'datasets/SIDD'
    train_lq, train_gt = str(out / 'train/input_crops.lmdb'), str(out / 'train/gt_crops.lmdb')
    val_lq, val_gt = str(out / 'val/input_crops.lmdb'), str(out / 'val/gt_crops.lmdb')
    assert 'verified datasets/SIDD/train/input_crops.lmdb and datasets/SIDD/train/gt_crops.lmdb: same keys' \
        in proc.stdout
    keys = [k for k, _, _ in meta(train_lq)]
    per_image = 3 * 3  # rows [0, 24, 32] x cols [0, 24, 48] (80 - 48 - 32 = 0: no extra column)
    assert len(keys) == 2 * 2 * per_image and keys[0] == '0001_SRGB_010_s001' and keys[-1] == '0002_SRGB_011_s009'
    assert [k for k, _, _ in meta(train_gt)] == keys

    # BasicSR's own PairedImageDataset reads the pairs: lq is the noisy crop, gt the clean one
    ds = paired_dataset(train_lq, train_gt)
    assert len(ds) == len(keys)
    item = ds[keys.index('0002_SRGB_010_s005')]
    scene = os.path.join(data, '0002_001_S6_00100_00060_3200_L')
    src_noisy = cv2.imread(os.path.join(scene, '0002_NOISY_SRGB_010.PNG'))[24:56, 24:56, ::-1]
    src_gt = cv2.imread(os.path.join(scene, '0002_GT_SRGB_010.PNG'))[24:56, 24:56, ::-1]
    assert item['lq_path'] == item['gt_path'] == '0002_SRGB_010_s005'
    assert np.array_equal(_rgb(item['lq']), src_noisy) and np.array_equal(_rgb(item['gt']), src_gt)

    # validation: 2 x 3 blocks, keys 0000.., RGB blocks come back as RGB from BasicSR's dataset
    assert [k for k, _, _ in meta(val_lq)] == ['0000', '0001', '0002', '0003', '0004', '0005']
    ds = paired_dataset(val_lq, val_gt)
    item = ds[4]  # image 1, block 1
    assert item['lq_path'] == '0004'
    assert np.array_equal(_rgb(item['lq']), noisy[1, 1]) and np.array_equal(_rgb(item['gt']), gt[1, 1])
    assert np.array_equal(cv2.imread(str(out / 'val/gt/0004.png'))[..., ::-1], gt[1, 1])
    assert len([n for n in os.listdir(out / 'val/input') if n.endswith('.png')]) == 6

    # re-run is a no-op (inputs not even read: remove them)
    before = mtimes(train_lq, train_gt, val_lq, val_gt)
    import shutil
    shutil.rmtree(tmp_path / 'datasets/raw')
    proc = run_script('sidd', ['--crop-size', '32', '--step', '24', '--png', '--verify'], cwd=tmp_path)
    assert proc.stderr.count('complete already, left alone') == 6
    assert mtimes(train_lq, train_gt, val_lq, val_gt) == before


@pytest.mark.parametrize('kill_after', [5, 30])
def test_sidd_killed_mid_write_then_rerun(tmp_path, rng, kill_after):
    make_sidd(tmp_path, rng)
    args = ['--splits', 'train', '--crop-size', '32', '--step', '24']
    proc = run_script('sidd', args, cwd=tmp_path, kill_after=kill_after, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    out = tmp_path / 'datasets/SIDD/train'
    for name in ('input_crops.lmdb', 'gt_crops.lmdb'):
        assert not os.path.exists(out / name)
        assert os.path.isfile(out / f'{name}.partial' / 'data.mdb')
        assert lmdb_status(str(out / name)) == 'partial'
    proc = run_script('sidd', args + ['--verify'], cwd=tmp_path)
    assert 'left by an interrupted run; removing it and rebuilding' in proc.stderr
    assert not any(n.endswith('.partial') for n in os.listdir(out))
    reports = verify_paired_lmdbs(str(out / 'input_crops.lmdb'), str(out / 'gt_crops.lmdb'))
    assert [r['records'] for r in reports] == [36, 36]


def test_bsd_killed_mid_write_then_rerun(tmp_path, rng):
    make_bsd(tmp_path, rng)
    args = ['--sets', 'BSD400', '--crop-size', '32', '--step', '24', '--any-count']
    proc = run_script('bsd', args, cwd=tmp_path, kill_after=10, check=False)
    assert proc.returncode == -signal.SIGKILL
    run_script('bsd', args + ['--verify'], cwd=tmp_path)
    assert verify_lmdb(str(tmp_path / 'datasets/BSD400/train_crops.lmdb'))['records'] == 27


def test_sidd_missing_and_corrupt_inputs(tmp_path, rng):
    data, _, _ = make_sidd(tmp_path, rng, scenes=3)
    os.remove(os.path.join(data, '0001_001_S6_00100_00060_3200_L', '0001_GT_SRGB_011.PNG'))
    os.remove(os.path.join(data, '0003_001_S6_00100_00060_3200_L', '0003_NOISY_SRGB_010.PNG'))
    os.makedirs(os.path.join(data, '0004_001_S6_00100_00060_3200_L'))
    scipy.io.savemat(str(tmp_path / 'datasets/raw/SIDD/ValidationGtBlocksSrgb.mat'),
                     {'SomethingElse': np.zeros((1, 1, 4, 4, 3), np.uint8)})
    proc = run_script('sidd', ['--crop-size', '32', '--step', '24'], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    err = proc.stderr
    assert '0001_NOISY_SRGB_011.PNG: no matching clean image' in err
    assert '0003_GT_SRGB_010.PNG: no matching noisy image' in err
    assert '0004_001_S6_00100_00060_3200_L: no *_NOISY* / *_GT* image pairs found' in err
    assert "ValidationGtBlocksSrgb.mat: variable 'ValidationGtBlocksSrgb' not found (variables: SomethingElse)" in err
    assert not os.path.exists(tmp_path / 'datasets/SIDD/train')

    # pairing fixed, one image corrupt: named, nothing committed
    make_sidd(tmp_path, rng, scenes=3)
    import shutil
    shutil.rmtree(os.path.join(data, '0004_001_S6_00100_00060_3200_L'))
    with open(os.path.join(data, '0002_001_S6_00100_00060_3200_L', '0002_GT_SRGB_010.PNG'), 'wb') as f:
        f.write(b'\x89PNG truncated')
    proc = run_script('sidd', ['--splits', 'train', '--crop-size', '32', '--step', '24'], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and '0002_GT_SRGB_010.PNG: unreadable or corrupt image' in proc.stderr
    assert not os.listdir(tmp_path / 'datasets/SIDD/train')


# ------------------------------------------------------------------------------------ polyu.py / nam.py
# Names as the real sets spell them (PolyU CroppedImages, Nam CC15), oddities included: a double
# underscore (plant__4, the key keeps it) beside plant_10 of the same scene, dashes in the lens field.
POLYU_NAMES = ['Canon5D2_5_160_3200_chair_11', 'Canon80D_8_8_12800_printer_14', 'NikonD800_5_125_6400_stair_7',
               'NikonD800_6-3_125_5000_plant__4', 'NikonD800_6-3_125_5000_plant_10', 'Sony_4-5_125_3200_plant_10']
NAM_NAMES = ['5dmark3_iso3200_1', 'd600_iso3200_2', 'd800_iso1600_3', 'd800_iso3200_1', 'd800_iso6400_3']


@pytest.mark.parametrize('script,layout', [('polyu', 'flat'), ('nam', 'flat'), ('nam', 'real_mean')])
def test_real_mean_pairs(tmp_path, rng, script, layout):
    if script == 'polyu':
        names, ext, folder = POLYU_NAMES, 'JPG', 'datasets/raw/PolyU/CroppedImages'
    else:
        names, ext, folder = NAM_NAMES, 'png', 'datasets/raw/Nam'
    folder = tmp_path / folder
    if layout == 'flat':
        make_real_mean(str(folder), names, ext, rng)
    else:
        make_real_mean(str(folder / 'real'), names, ext, rng, mean_folder=str(folder / 'mean'))
    proc = run_script(script, ['--png', '--verify', '--any-count'], cwd=tmp_path)  # a few of the 100 / 15
    out = tmp_path / 'datasets' / ('PolyU' if script == 'polyu' else 'Nam') / 'test'
    lq, gt = str(out / 'input.lmdb'), str(out / 'gt.lmdb')
    assert [k for k, _, _ in meta(lq)] == sorted(names) == [k for k, _, _ in meta(gt)]
    # every key holds its own two files: a _real paired with another name's _mean would show here
    # (read before the dataset below opens the LMDBs: one environment per process)
    real_dir, mean_dir = (folder, folder) if layout == 'flat' else (folder / 'real', folder / 'mean')
    for key in names:
        assert np.array_equal(read_lmdb_image(lq, key), cv2.imread(str(real_dir / f'{key}_real.{ext}'))), key
        assert np.array_equal(read_lmdb_image(gt, key), cv2.imread(str(mean_dir / f'{key}_mean.{ext}'))), key
    assert proc.stdout.count(f': {len(names)} records OK') == 2, proc.stdout
    ds = paired_dataset(lq, gt)
    item = ds[1]
    key = sorted(names)[1]
    sub = '' if layout == 'flat' else 'real'
    src_noisy = cv2.imread(str(folder / sub / f'{key}_real.{ext}'))[..., ::-1]
    sub = '' if layout == 'flat' else 'mean'
    src_gt = cv2.imread(str(folder / sub / f'{key}_mean.{ext}'))[..., ::-1]
    assert item['lq_path'] == key
    assert np.array_equal(_rgb(item['lq']), src_noisy) and np.array_equal(_rgb(item['gt']), src_gt)
    assert sorted(n for n in os.listdir(out / 'gt') if n.endswith('.png')) == sorted(f'{n}.png' for n in names)
    before = mtimes(lq, gt)
    proc = run_script(script, ['--png'], cwd=tmp_path)  # complete: nothing read, so nothing counted
    assert proc.stderr.count('complete already, left alone') == 4 and mtimes(lq, gt) == before


@pytest.mark.parametrize('script,standard', [('polyu', 100), ('nam', 15)])
def test_real_mean_sets_must_have_their_standard_count(tmp_path, rng, script, standard):
    """A partial download (3 pairs) is refused in one message before anything is written, as bsd.py
    refuses one; --any-count builds it; the standard count builds without it."""
    name = 'PolyU' if script == 'polyu' else 'Nam'
    folder = tmp_path / ('datasets/raw/PolyU/CroppedImages' if script == 'polyu' else 'datasets/raw/Nam')
    make_real_mean(str(folder), [f'cam_{i}' for i in range(3)], 'png', rng)
    out = tmp_path / 'datasets' / name / 'test'
    proc = run_script(script, [], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert (f'{name}: found 3 pairs in {folder.relative_to(tmp_path)}, the standard set has {standard}; check the '
            'download, or pass --any-count to build it anyway') in proc.stderr
    assert not out.exists() or not os.listdir(out)
    assert run_script(script, ['--any-count'], cwd=tmp_path).returncode == 0
    if script == 'nam':  # 15 small pairs are cheap: the standard count needs no flag
        make_real_mean(str(folder), [f'cam_{i}' for i in range(3, standard)], 'png', rng)
        proc = run_script(script, ['--overwrite', '--verify'], cwd=tmp_path)
        assert f': {standard} records OK' in proc.stdout


def test_polyu_unpaired_and_corrupt_listed_together(tmp_path, rng):
    folder = tmp_path / 'datasets/raw/PolyU/CroppedImages'
    make_real_mean(str(folder), ['a_1', 'b_2', 'c_3'], 'JPG', rng)
    os.remove(folder / 'b_2_mean.JPG')
    (folder / 'c_3_real.JPG').write_bytes(b'\xff\xd8 not really a jpeg')
    proc = run_script('polyu', [], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert '(2 problems)' in proc.stderr
    assert 'b_2_real.JPG: no matching clean image' in proc.stderr
    assert 'c_3_real.JPG: unreadable or corrupt image' in proc.stderr
    out = tmp_path / 'datasets/PolyU/test'
    assert not os.path.exists(out / 'input.lmdb') and not os.path.exists(out / 'input.lmdb.partial')


def test_scripts_have_help_with_download_and_command():
    for name in ('bsd', 'sidd', 'polyu', 'nam'):
        proc = run_script(name, ['--help'])
        assert '--workers' in proc.stdout and '--verify' in proc.stdout
        with open(os.path.join(SCRIPTS, f'{name}.py')) as f:
            doc = f.read()
        assert 'http' in doc and f'python scripts/data_preparation/{name}.py' in doc


def _truncate(lmdb_path, keep=0.5):
    data = os.path.join(lmdb_path, 'data.mdb')
    size = os.path.getsize(data)
    with open(data, 'r+b') as f:
        f.truncate(int(size * keep))
    return size


def test_a_truncated_lmdb_is_one_line_not_a_crash(tmp_path, rng):
    make_bsd(tmp_path, rng)
    run_script('bsd', ['--sets', 'CBSD68', '--any-count'], cwd=tmp_path)
    lmdb_path = tmp_path / 'datasets' / 'CBSD68' / 'test.lmdb'
    size = _truncate(str(lmdb_path))
    proc = run_script('bsd', ['--sets', 'CBSD68', '--any-count', '--verify'], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr  # not SIGBUS (-7)
    assert f'is truncated: data.mdb has {size // 2} of {size} bytes' in proc.stderr and '--overwrite' in proc.stderr
    # the datasets refuse it before reading (BasicSR's own LMDB backend too, through the shared environment)
    from gimsanet_arch.data.image_io import ImageReadError, LmdbReader
    from gimsanet_arch.data.lmdb_env import shared_env
    with pytest.raises(ImageReadError, match='is truncated'):
        LmdbReader(str(lmdb_path))
    with pytest.raises(ImageReadError, match='is truncated'):
        shared_env(str(lmdb_path))
    # rebuilt with --overwrite, it verifies again
    run_script('bsd', ['--sets', 'CBSD68', '--any-count', '--verify', '--overwrite'], cwd=tmp_path)


def test_a_damaged_lmdb_page_names_the_lmdb_and_key(tmp_path, rng):
    make_bsd(tmp_path, rng)
    run_script('bsd', ['--sets', 'CBSD68', '--any-count'], cwd=tmp_path)
    lmdb_path = tmp_path / 'datasets' / 'CBSD68' / 'test.lmdb'
    data = os.path.join(lmdb_path, 'data.mdb')
    with open(data, 'r+b') as f:  # scribble over every page after the two meta pages
        f.seek(2 * 4096)
        f.write(b'\xa5' * (os.path.getsize(data) - 2 * 4096))
    from gimsanet_arch.data.image_io import ImageReadError, LmdbReader
    with pytest.raises(ImageReadError, match=r'is damaged \(reading key "200001"'):
        LmdbReader(str(lmdb_path)).get('200001')
