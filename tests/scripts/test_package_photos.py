"""scripts/data_preparation/package_photos.py on tiny generated photos in a pre-seeded package cache.

No network: the cache is seeded by hand (``unpacked/`` trees, or ``.deb`` files built with
``dpkg-deb -b``), and where a download is exercised ``apt-get`` is a stand-in script on ``PATH``.
"""
import hashlib
import os
import shutil
import subprocess

import sys

import cv2
import numpy as np
import pytest

from gimsanet_prep.verify import read_lmdb_image, read_meta_info
from test_data_preparation import SCRIPTS, mtimes, run_script, write

sys.path.insert(0, SCRIPTS)  # debian_sources.py sits beside package_photos.py, outside the installed packages
from debian_sources import MANIFEST_COLUMNS, package_dirname  # noqa: E402

# package -> version; the epoch (1:) checks apt's %3a in the cache folder names
PACKAGES = {'pkg-walls': '1:2.0-1', 'pkg-game': '0.5-3'}
# key, split, package, path inside the package, (h, w)
PHOTOS = [
    ('walls_lake', 'train', 'pkg-walls', 'usr/share/wallpapers/Lake/contents/images/120x80.jpg', (80, 120)),
    ('walls_small', 'train', 'pkg-walls', 'usr/share/wallpapers/Small/small.png', (50, 40)),
    ('game_bee', 'train', 'pkg-game', 'usr/share/game/bee.png', (64, 64)),
    ('walls_tree', 'val', 'pkg-walls', 'usr/share/wallpapers/Tree/tree.png', (100, 130)),
]
# --short-side 64 --crop-size 32 (step 32) --val-crop 24
ARGS = ['--short-side', '64', '--crop-size', '32', '--val-crop', '24']
# 80x120 -> 64x96: 2x3 crops; 50x40 is smaller than 64, kept: rows [0, 18] x cols [0, 8]; 64x64: 2x2
EXPECTED_TRAIN = ([f'walls_lake_s{i:03d}' for i in range(1, 7)] + [f'walls_small_s{i:03d}' for i in range(1, 5)]
                  + [f'game_bee_s{i:03d}' for i in range(1, 5)])


def photo(rng, shape):
    """A smooth colour image with some texture (a plausible photo stand-in)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], axis=2)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def package_root(cache, package):
    return os.path.join(cache, 'unpacked', package_dirname(package, PACKAGES[package]))


def write_manifest(path, rows):
    lines = ['# test manifest', '\t'.join(MANIFEST_COLUMNS)]
    lines += ['\t'.join(row) for row in rows]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def seed(tmp_path, rng, photos=PHOTOS):
    """Unpacked package trees in ``tmp_path/cache`` and a manifest; returns (cache, manifest, images)."""
    cache, images, rows = str(tmp_path / 'cache'), {}, []
    for key, split, package, rel, shape in photos:
        path = os.path.join(package_root(cache, package), *rel.split('/'))
        images[key] = photo(rng, shape)
        write(path, images[key])
        images[key] = cv2.imread(path)  # as stored (the JPEG is lossy)
        rows.append((key, split, package, PACKAGES[package], rel, sha256(path), 'GPL-2+', 'someone'))
    manifest = str(tmp_path / 'photos.tsv')
    write_manifest(manifest, rows)
    return cache, manifest, images


def run(tmp_path, cache, manifest, extra=(), check=True, env=None):
    return run_script('package_photos', ['--cache', cache, '--manifest', manifest, '--output-root',
                                         str(tmp_path / 'out'), *ARGS, *extra], cwd=tmp_path, check=check, env=env)


def keys(lmdb):
    return [k for k, _, _ in read_meta_info(lmdb)]


@pytest.fixture
def rng():
    return np.random.default_rng(13)


def test_train_crops_val_centre_crops_png_and_summary(tmp_path, rng):
    cache, manifest, images = seed(tmp_path, rng)
    proc = run(tmp_path, cache, manifest, ['--offline', '--png', '--verify'])
    out = tmp_path / 'out'
    assert keys(out / 'train_crops.lmdb') == EXPECTED_TRAIN
    assert keys(out / 'val.lmdb') == ['walls_tree']
    pngs = {split: sorted(n for n in os.listdir(out / split) if n.endswith('.png')) for split in ('train_crops', 'val')}
    assert pngs == {'train_crops': sorted(f'{k}.png' for k in EXPECTED_TRAIN), 'val': ['walls_tree.png']}
    # val: shrunk (area) so that the short side is 64, then the centre 24x24
    shrunk = cv2.resize(images['walls_tree'], (83, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(read_lmdb_image(str(out / 'val.lmdb'), 'walls_tree'), shrunk[20:44, 29:53])
    # train: crops of the shrunk photo in BasicSR's order; an image below --short-side is not resized
    lake = cv2.resize(images['walls_lake'], (96, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(read_lmdb_image(str(out / 'train_crops.lmdb'), 'walls_lake_s006'), lake[32:64, 64:96])
    np.testing.assert_array_equal(read_lmdb_image(str(out / 'train_crops.lmdb'), 'walls_small_s004'),
                                  images['walls_small'][18:50, 8:40])
    assert all(s == (32, 32, 3) for _, s, _ in read_meta_info(out / 'train_crops.lmdb'))
    assert 'train: 3 photos (pkg-game 1, pkg-walls 2)' in proc.stdout
    assert 'val: 1 photos (pkg-walls 1)' in proc.stdout
    assert 'verified' in proc.stdout


def test_rerun_reads_nothing_and_another_manifest_is_refused(tmp_path, rng):
    cache, manifest, _ = seed(tmp_path, rng)
    run(tmp_path, cache, manifest, ['--offline'])
    out = tmp_path / 'out'
    before = mtimes(out / 'train_crops.lmdb', out / 'val.lmdb')
    shutil.rmtree(cache)  # a complete build needs neither the cache nor the network again
    proc = run(tmp_path, cache, manifest, ['--offline'])
    assert 'complete already' in proc.stderr
    assert mtimes(out / 'train_crops.lmdb', out / 'val.lmdb') == before
    # dropping a train photo from the manifest changes what train_crops.lmdb must hold
    with open(manifest) as f:
        lines = [line for line in f if not line.startswith('walls_small')]
    with open(manifest, 'w') as f:
        f.writelines(lines)
    proc = run(tmp_path, cache, manifest, ['--offline'], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'train_crops.lmdb: exists but was built with other parameters' in proc.stderr


def test_changed_and_missing_files_are_named(tmp_path, rng):
    cache, manifest, _ = seed(tmp_path, rng)
    changed = os.path.join(package_root(cache, 'pkg-game'), 'usr', 'share', 'game', 'bee.png')
    write(changed, photo(rng, (64, 64)))
    os.remove(os.path.join(package_root(cache, 'pkg-walls'), 'usr', 'share', 'wallpapers', 'Tree', 'tree.png'))
    proc = run(tmp_path, cache, manifest, ['--offline'], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert '(2 problems)' in proc.stderr
    assert f'game_bee: {changed} has sha256 {sha256(changed)}, the manifest says' in proc.stderr
    assert 'walls_tree: pkg-walls 1:2.0-1 has no file usr/share/wallpapers/Tree/tree.png' in proc.stderr
    out = tmp_path / 'out'
    assert not any(os.path.exists(out / n) for n in ('train_crops.lmdb', 'val.lmdb', 'train_crops.lmdb.partial'))


def test_manifest_problems_listed_with_line_numbers(tmp_path, rng):
    cache, manifest, _ = seed(tmp_path, rng)
    with open(manifest) as f:
        lines = f.read().splitlines()
    # line 3: walls_lake, line 4: walls_small, line 5: game_bee, line 6: walls_tree
    fields = [line.split('\t') for line in lines[2:]]
    fields[0][1] = 'test'                                # unknown split
    fields[1][5] = 'ABC'                                 # not a sha256
    fields[2][0] = 'walls_lake'                          # duplicate key
    fields[3][3] = '9.9-1'                               # second version of pkg-walls
    with open(manifest, 'w') as f:
        f.write('\n'.join(lines[:2] + ['\t'.join(x) for x in fields] + ['only\ttwo']) + '\n')
    proc = run(tmp_path, cache, manifest, ['--offline'], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert '(5 problems)' in proc.stderr
    for expected in ("line 3: split must be one of train, val, got 'test'",
                     "line 4: sha256 must be 64 lower-case hex digits, got 'ABC'",
                     "line 5: key 'walls_lake' is already used on line 3",
                     'line 6: pkg-walls version 9.9-1 but line 3 says 1:2.0-1',
                     'line 7: 2 tab-separated fields, expected 8'):
        assert expected in proc.stderr, expected


def test_offline_names_every_package_not_in_the_cache(tmp_path, rng):
    cache, manifest, _ = seed(tmp_path, rng)
    shutil.rmtree(os.path.join(cache, 'unpacked'))
    proc = run(tmp_path, cache, manifest, ['--offline'], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'pkg-game 0.5-3: not in' in proc.stderr and 'pkg-walls 1:2.0-1: not in' in proc.stderr


# ------------------------------------------------------------------------------------ .deb files
def build_deb(tmp_path, package, version, cache):
    """A real .deb of the PHOTOS of ``package`` (taken from the seeded tree), built by dpkg-deb."""
    tree = tmp_path / f'debroot-{package_dirname(package, version)}'
    shutil.copytree(package_root(cache, package), tree)
    os.makedirs(tree / 'DEBIAN')
    (tree / 'DEBIAN' / 'control').write_text(f'Package: {package}\nVersion: {version}\nArchitecture: all\n'
                                             'Maintainer: Test <test@example.org>\nDescription: test photos\n')
    deb = tmp_path / f'{package_dirname(package, version)}_all.deb'
    subprocess.run(['dpkg-deb', '--root-owner-group', '-b', str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.skipif(shutil.which('dpkg-deb') is None, reason='needs dpkg-deb (Debian/Ubuntu)')
def test_download_and_seeded_deb_are_unpacked(tmp_path, rng):
    cache, manifest, _ = seed(tmp_path, rng)
    walls = build_deb(tmp_path, 'pkg-walls', PACKAGES['pkg-walls'], cache)
    game = build_deb(tmp_path, 'pkg-game', PACKAGES['pkg-game'], cache)
    wrong = build_deb(tmp_path, 'pkg-game', '0.4-1', cache)
    shutil.rmtree(os.path.join(cache, 'unpacked'))
    # apt-get stand-in: logs its arguments, "downloads" pkg-walls into the current folder
    bin_dir = tmp_path / 'bin'
    os.makedirs(bin_dir)
    (bin_dir / 'apt-get').write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/apt-get.log\n'
                                     f'[ "$2" = "pkg-walls={PACKAGES["pkg-walls"]}" ] && cp {walls} . \n')
    os.chmod(bin_dir / 'apt-get', 0o755)
    env = {'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'}
    os.makedirs(os.path.join(cache, '.download-killed'))  # what a killed download leaves
    # a seeded .deb of another version is refused by name
    os.makedirs(os.path.join(cache, 'debs'))
    shutil.copy(wrong, os.path.join(cache, 'debs', f'{package_dirname("pkg-game", "0.5-3")}_all.deb'))
    proc = run(tmp_path, cache, manifest, check=False, env=env)
    assert proc.returncode == 2 and 'is pkg-game 0.4-1, the manifest wants pkg-game 0.5-3' in proc.stderr
    # pkg-walls was downloaded and unpacked all the same; the right pkg-game .deb is unpacked without apt-get
    shutil.copy(game, os.path.join(cache, 'debs', f'{package_dirname("pkg-game", "0.5-3")}_all.deb'))
    run(tmp_path, cache, manifest, env=env)
    assert open(tmp_path / 'apt-get.log').read().splitlines() == ['download pkg-walls=1:2.0-1']
    assert keys(tmp_path / 'out' / 'train_crops.lmdb') == EXPECTED_TRAIN
    assert sorted(os.listdir(os.path.join(cache, 'unpacked'))) == ['pkg-game_0.5-3', 'pkg-walls_1%3a2.0-1']
    assert not [n for n in os.listdir(cache) if n.startswith('.download-')]
    # apt-get failing (no such version in the archive) is reported with what to do
    shutil.rmtree(os.path.join(cache, 'unpacked', 'pkg-walls_1%3a2.0-1'))
    (bin_dir / 'apt-get').write_text('#!/bin/sh\necho "E: Version not found" >&2\nexit 100\n')
    proc = run(tmp_path, cache, manifest, ['--overwrite'], check=False, env=env)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert '`apt-get download pkg-walls=1:2.0-1` failed (exit 100): E: Version not found' in proc.stderr
    assert 'apt-get update' in proc.stderr


def test_help_names_the_command_and_the_source():
    proc = run_script('package_photos', ['--help'])
    assert '--offline' in proc.stdout and '--verify' in proc.stdout and '--manifest' in proc.stdout
    with open(os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'data_preparation',
                           'package_photos.py')) as f:
        doc = f.read()
    assert 'apt-get download' in doc and 'python scripts/data_preparation/package_photos.py' in doc
