"""gimsanet-denoise on generated images: bit depths, gray/colour, odd sizes, tiles, self-ensemble,
bad files, official checkpoints, and memory bounded by the tile."""
import copy
import json
import os

import cv2
import numpy as np
import pytest
import torch

from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.commands import denoise
from gimsanet_arch.inference import engine, photo

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, 'tests', 'fixtures')
GIMSANET_RADIUS = 42  # receptive-field radius of GIMSANet (measured in test_receptive_radius)


def smooth_image(h, w, channels, dtype, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w, channels)).astype(np.float32), (7, 7), 2)
    img = (img - img.min()) / (img.max() - img.min())
    peak = 255 if dtype == np.uint8 else 65535
    img = (img * peak).round().astype(dtype)
    return img[:, :, 0] if img.ndim == 3 and channels == 1 else img


def tiny_gimsanet(in_channels, seed=0):
    torch.manual_seed(seed)
    net = GIMSANet(in_channels=in_channels, num_feat=8)
    for m in net.modules():  # non-zero biases, so every pixel of the output depends on the weights
        if isinstance(m, torch.nn.Conv2d) and m.bias is not None and m.bias.requires_grad:
            torch.nn.init.normal_(m.bias, 0, 0.02)
    return net.eval()


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """BasicSR checkpoints of tiny GIMSANets: ``params_ema`` differs from ``params`` (EMA must win)."""
    root = tmp_path_factory.mktemp('ckpt')
    out = {}
    for c in (1, 3):
        ema, plain = tiny_gimsanet(c, seed=1), tiny_gimsanet(c, seed=2)
        path = root / f'g{c}.pth'
        torch.save({'params': plain.state_dict(), 'params_ema': ema.state_dict()}, path)
        out[c] = (str(path), ema)
    return out


def run_cli(args, capsys=None):
    code = denoise.main([*map(str, args), '--no-progress', '--device', 'cpu', '--dtype', 'fp32'])
    captured = capsys.readouterr() if capsys is not None else None
    return code, captured


def arch_args(c):
    return json.dumps({'in_channels': c, 'num_feat': 8})


@pytest.mark.parametrize('channels,dtype,ext', [(3, np.uint8, '.png'), (1, np.uint8, '.png'),
                                                (3, np.uint16, '.png'), (1, np.uint16, '.tif'),
                                                (3, np.uint8, '.jpg')])
def test_denoise_keeps_size_depth_and_layout(tmp_path, ckpts, channels, dtype, ext):
    img = smooth_image(23, 37, channels, dtype)
    src = tmp_path / f'photo{ext}'
    assert cv2.imwrite(str(src), img)
    stored = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    code, _ = run_cli([src, '-o', tmp_path / 'out', '--arch', 'GIMSANet', '--weights', ckpts[channels][0],
                       '--arch-args', arch_args(channels)])
    assert code == 0
    out_path = tmp_path / 'out' / ('photo.png' if ext == '.jpg' else f'photo{ext}')
    out = cv2.imread(str(out_path), cv2.IMREAD_UNCHANGED)
    assert out.shape == stored.shape and out.dtype == stored.dtype
    # the EMA weights were used, on RGB float input, and written in the input's depth. The reference is
    # the command's own fp32 path (network prepared, channels_last): that layout differs from the plain
    # one by ~1e-6, which can move a 16-bit value by one level (tests/inference/test_fast_path.py
    # bounds that difference)
    x, layout = photo.to_network_input(stored, channels)
    expected = photo.run_on_array(engine.prepare_network(copy.deepcopy(ckpts[channels][1])), x, dtype='fp32')
    np.testing.assert_array_equal(out, photo.from_network_output(expected, layout))
    assert not [n for n in os.listdir(tmp_path / 'out') if n.startswith('.')], 'temp files left behind'


@pytest.mark.parametrize('native_bf16', [True, False])
def test_dtype_defaults_to_auto_and_fp32_forces_float32(tmp_path, ckpts, capsys, monkeypatch, native_bf16):
    """Without --dtype the fast path's dtype: bf16 autocast where the device has native bf16."""
    monkeypatch.setattr(engine, 'bf16_supported', lambda device: native_bf16)
    img = smooth_image(21, 26, 3, np.uint16)
    cv2.imwrite(str(tmp_path / 'p.png'), img)
    base = [str(tmp_path / 'p.png'), '--arch', 'GIMSANet', '--weights', ckpts[3][0], '--arch-args', arch_args(3),
            '--no-progress', '--device', 'cpu']
    x, layout = photo.to_network_input(img, 3)
    ready = engine.prepare_network(copy.deepcopy(ckpts[3][1]))
    for extra, dtype in (([], 'bf16' if native_bf16 else 'fp32'), (['--dtype', 'fp32'], 'fp32')):
        folder = tmp_path / f'{dtype}{"_forced" if extra else ""}'  # a run never replaces an earlier run's output
        assert denoise.main(base + ['-o', str(folder)] + extra) == 0
        assert f'on cpu ({"bfloat16" if dtype == "bf16" else "float32"})' in capsys.readouterr().out
        out = cv2.imread(str(folder / 'p.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(out, photo.from_network_output(photo.run_on_array(ready, x, dtype=dtype), layout))


def test_compile_flag_compiles_the_prepared_network(tmp_path, ckpts, monkeypatch):
    """--compile hands the channels_last network to torch.compile (the compiled numbers:
    tests/inference/test_fast_path.py::test_compiled_network_equals_eager, marked slow)."""
    compiled = []
    monkeypatch.setattr(torch, 'compile', lambda net: compiled.append(net) or net)
    cv2.imwrite(str(tmp_path / 'p.png'), smooth_image(9, 11, 3, np.uint8))
    assert run_cli([tmp_path / 'p.png', '-o', tmp_path / 'o', '--compile', '--arch', 'GIMSANet', '--weights',
                    ckpts[3][0], '--arch-args', arch_args(3)])[0] == 0
    assert len(compiled) == 1 and compiled[0].head_conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert run_cli([tmp_path / 'p.png', '-o', tmp_path / 'o2', '--arch', 'GIMSANet', '--weights', ckpts[3][0],
                    '--arch-args', arch_args(3)])[0] == 0 and len(compiled) == 1


def test_gray_and_colour_are_converted_with_a_warning(tmp_path, ckpts, capsys):
    gray, colour = smooth_image(20, 21, 1, np.uint8), smooth_image(20, 21, 3, np.uint8)
    cv2.imwrite(str(tmp_path / 'gray.png'), gray)
    cv2.imwrite(str(tmp_path / 'colour.png'), colour)
    code, cap = run_cli([tmp_path / 'gray.png', '-o', tmp_path / 'o3', '--arch', 'GIMSANet', '--weights',
                         ckpts[3][0], '--arch-args', arch_args(3)], capsys)
    assert code == 0 and 'gray image converted to color' in cap.out + cap.err
    assert cv2.imread(str(tmp_path / 'o3' / 'gray.png'), cv2.IMREAD_UNCHANGED).ndim == 2  # gray stays gray
    code, cap = run_cli([tmp_path / 'colour.png', '-o', tmp_path / 'o1', '--arch', 'GIMSANet', '--weights',
                         ckpts[1][0], '--arch-args', arch_args(1)], capsys)
    assert code == 0 and 'color image converted to gray' in cap.out + cap.err
    assert cv2.imread(str(tmp_path / 'o1' / 'colour.png'), cv2.IMREAD_UNCHANGED).ndim == 2


def test_alpha_is_kept(tmp_path, ckpts):
    img = smooth_image(16, 18, 3, np.uint8)
    alpha = np.arange(16 * 18, dtype=np.uint8).reshape(16, 18)
    cv2.imwrite(str(tmp_path / 'a.png'), np.dstack([img, alpha]))
    assert run_cli([tmp_path / 'a.png', '-o', tmp_path / 'o', '--arch', 'GIMSANet', '--weights', ckpts[3][0],
                    '--arch-args', arch_args(3)])[0] == 0
    out = cv2.imread(str(tmp_path / 'o' / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert out.shape == (16, 18, 4) and np.array_equal(out[:, :, 3], alpha)


def test_receptive_radius():
    """The radius the tile tests rely on: an output pixel depends on inputs up to 42 px away."""
    net = tiny_gimsanet(3)
    x = torch.rand(1, 3, 101, 101, requires_grad=True)
    net(x)[0, :, 50, 50].sum().backward()
    rows = x.grad[0].abs().sum(0).sum(1).nonzero()
    assert 50 - rows.min().item() == GIMSANET_RADIUS


def test_tiles_match_whole_image_when_the_overlap_covers_the_receptive_field(ckpts):
    net = ckpts[3][1]
    img = torch.rand(1, 3, 201, 183)
    whole = engine.run(net, img)
    overlap = 2 * GIMSANET_RADIUS + 1 + 16  # the receptive field + the ramp
    assert engine.blend_margin(overlap)[0] >= GIMSANET_RADIUS
    tiled = engine.run(net, img, tile=overlap + 50, overlap=overlap)
    assert engine.tile_count(201, 183, overlap + 50, overlap) >= 4
    assert (tiled - whole).abs().max().item() < 1e-3
    assert torch.equal(engine.run(net, img, tile=256, overlap=overlap), whole)  # one tile covers it: bit-equal


def test_cli_tiles_and_self_ensemble(tmp_path, ckpts, capsys):
    img = smooth_image(41, 29, 3, np.uint8)
    cv2.imwrite(str(tmp_path / 'p.png'), img)
    base = ['--arch', 'GIMSANet', '--weights', ckpts[3][0], '--arch-args', arch_args(3)]
    assert run_cli([tmp_path / 'p.png', '-o', tmp_path / 'whole', *base])[0] == 0
    assert run_cli([tmp_path / 'p.png', '-o', tmp_path / 'one', '--tile', '64', '--tile-overlap', '16', *base])[0] == 0
    assert run_cli([tmp_path / 'p.png', '-o', tmp_path / 'ens', '--self-ensemble', *base])[0] == 0
    whole, one, ens = (cv2.imread(str(tmp_path / d / 'p.png')) for d in ('whole', 'one', 'ens'))
    assert np.array_equal(whole, one)
    assert ens.shape == whole.shape and not np.array_equal(ens, whole)
    assert run_cli([tmp_path / 'p.png', '-o', tmp_path / 'tiles', '--tile', '24', '--tile-overlap', '8', *base])[0] == 0


def test_corrupt_file_is_skipped_by_name_and_the_rest_written(tmp_path, ckpts, capsys):
    folder = tmp_path / 'in'
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f'good{i}.png'), smooth_image(17, 19, 3, np.uint8, seed=i))
    (folder / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    (tmp_path / 'out').mkdir()
    # an existing output is replaced (atomically) only with --overwrite: test_denoise_safety.py has the refusal
    cv2.imwrite(str(tmp_path / 'out' / 'good0.png'), np.zeros((5, 5, 3), np.uint8))
    code, cap = run_cli([folder, '-o', tmp_path / 'out', '--arch', 'GIMSANet', '--weights', ckpts[3][0],
                         '--arch-args', arch_args(3), '--overwrite'], capsys)
    assert code == 1
    assert str(folder / 'bad.png') in cap.out + cap.err
    assert sorted(os.listdir(tmp_path / 'out')) == ['good0.png', 'good1.png']
    assert cv2.imread(str(tmp_path / 'out' / 'good0.png')).shape == (17, 19, 3)


def test_an_output_renamed_after_reading_never_replaces_a_file(tmp_path, ckpts, capsys):
    """A 16-bit PPM is written as PNG, which only reading can tell: that PNG is checked again before
    writing, so neither a file already there nor another input's output is replaced."""
    folder, out = tmp_path / 'in', tmp_path / 'out'
    folder.mkdir()
    out.mkdir()
    cv2.imwrite(str(folder / 'a.ppm'), smooth_image(9, 11, 3, np.uint16))
    cv2.imwrite(str(folder / 'b.ppm'), smooth_image(9, 11, 3, np.uint16, seed=1))
    cv2.imwrite(str(folder / 'b.png'), smooth_image(9, 11, 3, np.uint8, seed=2))
    cv2.imwrite(str(out / 'a.png'), np.full((3, 3, 3), 7, np.uint8))  # the user's own file
    code, cap = run_cli([folder, '-o', out, '--arch', 'GIMSANet', '--weights', ckpts[3][0],
                         '--arch-args', arch_args(3)], capsys)
    assert code == 1
    assert f'{out / "a.png"} already exists and this run did not make it' in cap.out
    assert f'{out / "b.png"} is the output of {folder / "b.png"} too' in cap.out
    assert cv2.imread(str(out / 'b.png'), cv2.IMREAD_UNCHANGED).dtype == np.uint8  # b.png's own output
    assert cv2.imread(str(out / 'a.png'))[0, 0, 0] == 7
    assert sorted(os.listdir(out)) == ['a.png', 'b.png']


def test_write_failure_keeps_the_existing_output(tmp_path, monkeypatch):
    from gimsanet_prep import images
    target = tmp_path / 'x.png'
    cv2.imwrite(str(target), np.full((4, 4, 3), 7, np.uint8))
    monkeypatch.setattr(images.cv2, 'imwrite', lambda path, img: open(path, 'wb').write(b'half') and False)
    with pytest.raises(OSError, match='x.png'):
        images.write_image(str(target), np.zeros((4, 4, 3), np.uint8))
    monkeypatch.undo()
    assert cv2.imread(str(target))[0, 0, 0] == 7 and os.listdir(tmp_path) == ['x.png']


def test_sigma_reports_psnr_of_the_seeded_noise(tmp_path, ckpts, capsys):
    from basicsr.metrics import calculate_psnr
    from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
    img = smooth_image(24, 24, 3, np.uint8)
    cv2.imwrite(str(tmp_path / 's.png'), img)
    code, cap = run_cli([tmp_path / 's.png', '-o', tmp_path / 'o', '--sigma', '25', '--arch', 'GIMSANet',
                         '--weights', ckpts[3][0], '--arch-args', arch_args(3)], capsys)
    assert code == 0
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.
    noisy = (np.clip(add_test_noise(rgb, 25), 0, 1) * 255).round()
    expected = calculate_psnr(noisy, rgb * 255, crop_border=0)
    assert f'(noisy {expected:.2f})' in cap.out and 'mean over 1 image(s), sigma 25' in cap.out


@pytest.mark.parametrize('arch,case', [('Restormer', 'color_biasfree'), ('NAFNet', 'color_w8')])
def test_official_checkpoints_load_through_weights(tmp_path, arch, case):
    """The committed official reference files (and the released {'params': ...} layout) load as they are."""
    ref = torch.load(os.path.join(FIXTURES, arch.lower(), f'{case}.pt'), map_location='cpu', weights_only=True)
    released = tmp_path / 'released.pth'
    torch.save({'params': ref['state_dict']}, released)
    img = smooth_image(24, 32, 3, np.uint16)  # 16-bit keeps the comparison fine-grained
    cv2.imwrite(str(tmp_path / 'in.png'), img)
    runs = [(weights, ['--arch', arch, '--arch-args', json.dumps(ref['kwargs'])])
            for weights in (os.path.join(FIXTURES, arch.lower(), f'{case}.pt'), released)]
    runs.append((released, []))  # --weights alone: the architecture and its arguments read from the file
    for index, (weights, model_args) in enumerate(runs):
        out_dir = tmp_path / f'out_{index}'
        code, _ = run_cli([tmp_path / 'in.png', '-o', out_dir, '--weights', weights, *model_args])
        assert code == 0
        out = cv2.imread(str(out_dir / 'in.png'), cv2.IMREAD_UNCHANGED)
        from basicsr.archs import build_network
        net = build_network({'type': arch, **ref['kwargs']})
        net.load_state_dict(ref['state_dict'])
        x, layout = photo.to_network_input(img, 3)
        expected = photo.from_network_output(
            photo.run_on_array(net.eval(), x, 8 if arch == 'Restormer' else 1, dtype='fp32'), layout)
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_bad_model_arguments_are_one_line(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / 'p.png'), smooth_image(8, 8, 3, np.uint8))
    code, cap = run_cli([tmp_path / 'p.png', '--arch', 'GIMSNet', '--weights', 'x.pth'], capsys)
    assert code == 2 and 'Did you mean "GIMSANet"' in cap.err
    torch.save({'params': tiny_gimsanet(1).state_dict()}, tmp_path / 'gray.pth')
    code, cap = run_cli([tmp_path / 'p.png', '--weights', tmp_path / 'gray.pth', '--arch-args', '{in_channels: 3}'],
                        capsys)  # a given argument overrides what the weights say, and must match them
    assert code == 2 and 'shape mismatch' in cap.err and len(cap.err.strip().splitlines()) == 1
    code, cap = run_cli([tmp_path / 'p.png', '--arch', 'NAFNet', '--weights', tmp_path / 'gray.pth'], capsys)
    assert code == 2 and 'holds GIMSANet weights, not NAFNet' in cap.err
    torch.save({'params': {'conv.weight': torch.zeros(2, 2, 3, 3)}}, tmp_path / 'other.pth')
    code, cap = run_cli([tmp_path / 'p.png', '--weights', tmp_path / 'other.pth'], capsys)
    assert code == 2 and 'no known architecture' in cap.err and len(cap.err.strip().splitlines()) == 1
    code, cap = run_cli([tmp_path / 'nothing*.png', '--arch', 'GIMSANet', '--weights', tmp_path / 'gray.pth'], capsys)
    assert code == 2 and 'nothing*.png' in cap.err


def test_noise_picks_among_the_shipped_weights_only(tmp_path, capsys):
    from gimsanet_arch.commands.denoise import parse_args, shipped_noise
    assert shipped_noise(parse_args(['p.png']))[0] == 'real'  # photos carry camera noise
    assert shipped_noise(parse_args(['p.png', '--sigma', '25']))[0] == 'gaussian'  # the test noise is Gaussian
    assert shipped_noise(parse_args(['p.png', '--sigma', '25', '--noise', 'real']))[0] == 'real'
    cv2.imwrite(str(tmp_path / 'p.png'), smooth_image(8, 8, 3, np.uint8))
    torch.save({'params': tiny_gimsanet(3).state_dict()}, tmp_path / 'mine.pth')
    code, cap = run_cli([tmp_path / 'p.png', '--noise', 'real', '--weights', tmp_path / 'mine.pth',
                         '-o', tmp_path / 'out'], capsys)
    assert code == 2 and '--noise real picks among the shipped weights' in cap.err
    assert not (tmp_path / 'out').exists()


def _peak_kb(net, side, tile):
    """Peak bytes held by torch's CPU allocator while denoising a ``side`` x ``side`` image."""
    from gimsanet_arch.inference.measure import peak_bytes
    img = torch.rand(1, 3, side, side)
    peak, _ = peak_bytes(lambda: engine.run(net, img, tile=tile, overlap=16), 'cpu')
    return peak / 1024


def test_tiled_peak_memory_does_not_grow_with_the_image():
    """Measured peak of torch's allocator: 4x the pixels grows a whole-image run by many MB (GIMSANet
    keeps full-size feature maps), a tiled run only by the image buffers themselves."""
    net = GIMSANet(num_feat=16).eval()
    whole = _peak_kb(net, 192, None) - _peak_kb(net, 96, None)
    tiled = _peak_kb(net, 192, 64) - _peak_kb(net, 96, 64)  # 64 px tiles, 16 px overlap: 9 and 25 tiles
    image_buffers_kb = 192 * 192 * 3 * 4 * 4 / 1024  # input, output, weights and a spare copy, float32
    assert whole > 4 * image_buffers_kb, f'whole-image growth {whole} kB: the measurement sees no activations'
    assert tiled < image_buffers_kb, f'tiled run grew by {tiled} kB for 4x the pixels'
