"""gimsanet-denoise never destroys what the user has and never ends in a traceback: each probe runs
the real command in a subprocess and checks the exit status, one line of stderr, and that every
file that was there before is unchanged (docs/faults.md).

The subprocesses fork from a warm interpreter (tests/warm_python.py, the environment the tests
run in, warnings included); one probe starts a fresh interpreter, so nothing printed at start-up
breaks the one line either."""
import hashlib
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import warm_python
from gimsanet_arch.archs.gimsanet_arch import GIMSANet

TINY = ['--arch', 'GIMSANet', '--arch-args', '{num_feat: 4}']


def checksums(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture
def photos(tmp_path):
    torch.manual_seed(0)
    torch.save({'params': GIMSANet(num_feat=4).state_dict()}, tmp_path / 'tiny.pth')
    folder = tmp_path / 'photos'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a.png', 'b.png'):
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    return tmp_path


def denoise(cwd, *args, fresh=False):
    argv = ['-m', 'gimsanet_arch.denoise', *map(str, args), '--no-progress']
    if fresh:
        return subprocess.run([sys.executable] + argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    return warm_python.run(argv, cwd, timeout=300, defaults={})


def refused(proc, *words):
    """Exit status 2, exactly one line on stderr, no traceback, the line containing ``words``."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


BAD_ARGUMENTS = [
    (['--tile', '16', '--tile-overlap', '32'], ['--tile-overlap 32']),
    (['--tile', '-8'], ['--tile', '-8']),
    (['--sigma', '-25'], ['--sigma', '-25']),
    (['--sigma', 'nan'], ['--sigma', 'nan']),
    (['--ext', 'xyz'], ['--ext', 'xyz']),
    (['--threads', '-1'], ['--threads', '-1']),
    (['--arch', 'GIMSANet', '--arch-args', '{num_feat:4}', '--weights', 'tiny.pth'], ['space after each colon']),
    (['--arch', 'GIMSANet', '--arch-args', '{num_fet: 4}', '--weights', 'tiny.pth'], ['num_fet']),
    (['--arch', 'GIMSANet', '--weights', 'notes.txt'], ['notes.txt', 'not a PyTorch checkpoint']),
    (['-opt', 'broken.yml'], ['invalid YAML in broken.yml (line 2']),
    (['-opt', 'unknown_type.yml'], ['unknown network type "GIMSANett"', 'Did you mean "GIMSANet"']),
    (['-o', 'photos/a.png'], ['photos/a.png', 'is a file']),
    (['-o', 'photos/a.png/sub'], ['cannot write to the output folder']),
]


@pytest.mark.parametrize('args, words', BAD_ARGUMENTS)
def test_bad_arguments_are_one_line_and_change_nothing(photos, args, words):
    (photos / 'notes.txt').write_text('not weights\n')
    (photos / 'broken.yml').write_text('network_g: {type: GIMSANet\n')
    (photos / 'unknown_type.yml').write_text('network_g: {type: GIMSANett}\npath: {pretrain_network_g: tiny.pth}\n')
    before = checksums(photos)
    inputs = ['photos', '-o', 'out'] if args[0] != '-o' else ['photos/b.png']
    refused(denoise(photos, *inputs, *args, fresh=args == BAD_ARGUMENTS[0][0]), *words)
    assert checksums(photos) == before


def test_an_output_that_is_an_input_is_refused_unless_overwrite(photos):
    before = checksums(photos)
    line = refused(denoise(photos, 'photos/a.png', '-o', 'photos', *TINY, '--weights', 'tiny.pth'), '--overwrite')
    assert 'photos/a.png' in line
    assert checksums(photos) == before
    proc = denoise(photos, 'photos/a.png', '-o', 'photos', *TINY, '--weights', 'tiny.pth', '--overwrite')
    assert proc.returncode == 0, proc.stderr
    after = checksums(photos)
    assert after['photos/a.png'] != before['photos/a.png'] and after['photos/b.png'] == before['photos/b.png']


def test_an_output_folder_inside_the_input_is_refused_and_never_read_back(photos):
    before = checksums(photos)
    refused(denoise(photos, 'photos', '-o', 'photos/denoised', *TINY, '--weights', 'tiny.pth'), 'inside the input')
    assert checksums(photos) == before and not (photos / 'photos' / 'denoised').exists()
    for _ in range(2):  # with --overwrite, twice: the second run does not denoise the first run's outputs
        proc = denoise(photos, 'photos', '-o', 'photos/denoised', *TINY, '--weights', 'tiny.pth', '--overwrite')
        assert proc.returncode == 0, proc.stderr
        assert 'wrote 2 image(s)' in proc.stdout
    assert sorted(os.listdir(photos / 'photos' / 'denoised')) == ['a.png', 'b.png']


def test_an_output_never_replaces_a_file_this_run_did_not_make(photos):
    """``clash/a.jpg -o clash`` would write ``clash/a.png``: an unrelated file the user has. It is
    kept (the file given, or through a glob), and so is an earlier run's output, unless --overwrite."""
    rng = np.random.default_rng(3)
    (photos / 'clash').mkdir()
    cv2.imwrite(str(photos / 'clash' / 'a.jpg'), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    cv2.imwrite(str(photos / 'clash' / 'a.png'), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    before = checksums(photos)
    for given in ('clash/a.jpg', 'clash/*.jpg'):
        line = refused(denoise(photos, given, '-o', 'clash', *TINY, '--weights', 'tiny.pth'), '--overwrite')
        assert 'clash/a.png' in line and 'already exists' in line
        assert checksums(photos) == before
    # the same command twice: the second run would replace the first run's outputs
    assert denoise(photos, 'photos', '-o', 'out', *TINY, '--weights', 'tiny.pth').returncode == 0
    made = checksums(photos)
    line = refused(denoise(photos, 'photos', '-o', 'out', *TINY, '--weights', 'tiny.pth'), 'out/a.png', '--overwrite')
    assert '(and 1 more)' in line and checksums(photos) == made
    proc = denoise(photos, 'clash/a.jpg', '-o', 'clash', *TINY, '--weights', 'tiny.pth', '--overwrite')
    assert proc.returncode == 0, proc.stderr
    after = checksums(photos)
    assert after['clash/a.png'] != before['clash/a.png'] and after['clash/a.jpg'] == before['clash/a.jpg']


def test_two_inputs_clash_only_when_their_outputs_do(photos):
    """a.png and a.jpg both become a.png (a JPEG is written as PNG): refused, saying so; --suffix
    cannot part them (it is added to both). a.png and a.tif stay apart: accepted."""
    cv2.imwrite(str(photos / 'photos' / 'a.jpg'), np.zeros((12, 10, 3), np.uint8))
    before = checksums(photos)
    for extra in ([], ['--suffix', '_d']):
        line = refused(denoise(photos, 'photos', '-o', 'out', *TINY, '--weights', 'tiny.pth', *extra),
                       'photos/a.jpg', 'photos/a.png', 'JPEG is written as PNG')
        assert f'out/a{extra[-1] if extra else ""}.png' in line
    assert checksums(photos) == before and not (photos / 'out').exists()
    os.remove(photos / 'photos' / 'a.jpg')
    cv2.imwrite(str(photos / 'photos' / 'a.tif'), np.zeros((12, 10, 3), np.uint8))
    proc = denoise(photos, 'photos', '-o', 'out', *TINY, '--weights', 'tiny.pth')
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(photos / 'out')) == ['a.png', 'a.tif', 'b.png']


def test_exif_orientation_is_applied_unless_kept(photos):
    from PIL import Image
    stored = np.zeros((20, 30, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the left of the stored pixels
    path = photos / 'portrait.jpg'
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view", as phones write portrait shots
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    proc = denoise(photos, path, '-o', 'up', *TINY, '--weights', 'tiny.pth')
    assert proc.returncode == 0, proc.stderr
    upright = cv2.imread(str(photos / 'up' / 'portrait.png'))
    assert upright.shape[:2] == (30, 20)  # turned as viewers show it
    with Image.open(path) as im:
        from PIL import ImageOps
        viewed = np.asarray(ImageOps.exif_transpose(im))
    assert viewed.shape[:2] == upright.shape[:2]
    proc = denoise(photos, path, '-o', 'kept', *TINY, '--weights', 'tiny.pth', '--keep-orientation')
    assert proc.returncode == 0 and cv2.imread(str(photos / 'kept' / 'portrait.png')).shape[:2] == (20, 30)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_upright_matches_pil_for_every_orientation(tmp_path, orientation):
    from PIL import Image, ImageOps
    from gimsanet_prep.orientation import read_oriented
    rgb = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / 'o.png'
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(cv2.cvtColor(read_oriented(str(path)), cv2.COLOR_BGR2RGB), expected)


def test_sigma_on_a_gray_photo_with_a_colour_model_scores_the_written_file(photos):
    from basicsr.metrics import calculate_psnr
    from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
    gray = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (24, 24), dtype=np.uint8), (5, 5), 2)
    cv2.imwrite(str(photos / 'g.png'), gray)
    proc = denoise(photos, 'g.png', '-o', 'out', *TINY, '--weights', 'tiny.pth', '--sigma', '25', '--dtype', 'fp32')
    assert proc.returncode == 0, proc.stderr
    written = cv2.imread(str(photos / 'out' / 'g.png'), cv2.IMREAD_UNCHANGED)
    assert written.ndim == 2
    printed = float(proc.stdout.split('sigma 25: PSNR ')[1].split(' dB')[0])
    assert printed == pytest.approx(calculate_psnr(written.astype(np.float64), gray.astype(np.float64), 0), abs=0.01)
    # the noise is one gray plane (the noisy photo a gray camera would give), not three independent ones
    noisy = add_test_noise(gray[:, :, None] / 255., 25)
    expected_noisy = calculate_psnr((np.clip(noisy, 0, 1) * 255).round(), gray[:, :, None].astype(np.float64), 0)
    assert f'(noisy {expected_noisy:.2f})' in proc.stdout
