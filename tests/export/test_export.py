"""ONNX / TorchScript export (``gimsanet_arch.export``): every export runs at a size other than the
export example's (odd, non-square, other batch) and matches the eager network; the command works end to
end on BasicSR and official checkpoints and fails with one line when a check fails."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.export
pytest.importorskip('onnx', reason='export extra not installed: pip install -e ".[export]"')
pytest.importorskip('onnxruntime', reason='export extra not installed: pip install -e ".[export]"')
pytest.importorskip('onnxscript', reason='export extra not installed: pip install -e ".[export]"')

from conftest import REPO_ROOT  # noqa: E402
from gimsanet_arch.archs.arch_info import pad_multiple  # noqa: E402
from gimsanet_arch.export.check import eager_reference  # noqa: E402
from gimsanet_arch.export.cli import main  # noqa: E402
from gimsanet_arch.inference import network  # noqa: E402
from gimsanet_arch.export.onnx_export import export_onnx, read_metadata  # noqa: E402
from gimsanet_arch.export.onnx_runtime import OnnxModel  # noqa: E402
from gimsanet_arch.export.torchscript_export import export_torchscript, load_torchscript  # noqa: E402

TOL = 1e-4
EXAMPLE_HW = (32, 32)
TINY = {
    'gimsanet_color': ('GIMSANet', dict(in_channels=3, num_feat=8)),
    'gimsanet_gray': ('GIMSANet', dict(in_channels=1, num_feat=8)),
    'restormer': ('Restormer', dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1)),
    'nafnet': ('NAFNet', dict(img_channel=3, width=8, enc_blk_nums=[1, 1, 1, 1], middle_blk_num=1,
                              dec_blk_nums=[1, 1, 1, 1])),
}
FIXTURES = osp.join(REPO_ROOT, 'tests', 'fixtures')


def _tiny(case, seed=0):
    arch, kwargs = TINY[case]
    torch.manual_seed(seed)
    return network.build(network.ModelSpec(case, dict(type=arch, **kwargs)))[0], kwargs


def _inputs(channels):
    """Odd, non-square sizes other than the example's, batch 1 and 3."""
    g = torch.Generator().manual_seed(1)
    return [torch.rand(1, channels, 37, 45, generator=g), torch.rand(3, channels, 29, 51, generator=g)]


def _assert_matches_eager(run, net, multiple, channels, label):
    for x in _inputs(channels):
        expected = eager_reference(net, x, multiple)
        got = run(x)
        assert got.shape == expected.shape
        diff = (got - expected).abs().max().item()
        print(f'{label} {tuple(x.shape)}: max abs diff {diff:.3g}')
        assert diff <= TOL


@pytest.mark.parametrize('case', sorted(TINY))
def test_onnx_and_torchscript_exports_match_eager_at_other_sizes(case, tmp_path):
    net, kwargs = _tiny(case)
    multiple = pad_multiple(net)
    channels = 1 if case == 'gimsanet_gray' else 3
    path = export_onnx(net, str(tmp_path), case, multiple, opset=18, example_hw=EXAMPLE_HW, arch_args=kwargs)
    assert osp.basename(path) == f'{case}.opset18.onnx'
    stored = read_metadata(path)
    assert stored['arch'] == TINY[case][0] and stored['opset'] == '18' and stored['exporter'] == 'dynamo'
    assert stored['in_channels'] == str(channels) and stored['pads_in_graph'] == 'true'
    assert stored['pad_multiple'] == ('8' if case == 'restormer' else '1')
    assert json.loads(stored['arch_args']) == kwargs
    model = OnnxModel(path)
    assert model.in_channels == channels
    _assert_matches_eager(model, net, multiple, channels, f'onnx {case}')

    path, _ = export_torchscript(net, str(tmp_path), case, multiple, example_hw=EXAMPLE_HW, arch_args=kwargs)
    assert osp.basename(path) == f'{case}.ts.pt'
    module, stored = load_torchscript(path)
    assert stored['arch'] == TINY[case][0] and stored['torchscript_method'] == 'trace'
    with torch.no_grad():
        _assert_matches_eager(module, net, multiple, channels, f'torchscript {case}')


def test_torchscript_script_method(tmp_path):
    """GIMSANet is written to script (its input-grad eps branch then stays a branch)."""
    net, _ = _tiny('gimsanet_color')
    path, tracer_warnings = export_torchscript(net, str(tmp_path), 'g', example_hw=EXAMPLE_HW, method='script')
    module, stored = load_torchscript(path)
    assert stored['torchscript_method'] == 'script' and tracer_warnings == []
    assert isinstance(module, torch.jit.RecursiveScriptModule)
    with torch.no_grad():
        _assert_matches_eager(module, net, 1, 3, 'torchscript (script) gimsanet_color')


def test_onnx_runtime_pads_when_the_graph_does_not(tmp_path):
    """A Restormer exported without in-graph padding (older tracing exporter, opset 17): the runtime
    pads to the recorded multiple itself."""
    net, _ = _tiny('restormer')
    path = export_onnx(net, str(tmp_path), 'bare', multiple=8, opset=17, example_hw=EXAMPLE_HW,
                       exporter='torchscript', pad_in_graph=False)
    assert path.endswith('bare.opset17.onnx') and read_metadata(path)['exporter'] == 'torchscript'
    model = OnnxModel(path)
    assert (model.pad_multiple, model.pads_in_graph) == (8, False)
    _assert_matches_eager(model, net, 8, 3, 'onnx restormer, runtime padding')
    with pytest.raises(ValueError, match='expects'):
        model(torch.rand(1, 1, 16, 16))


# ----------------------------------------------------------------------------- the command
def _run_export(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='2', PYTHONWARNINGS='ignore')
    cmd = [sys.executable, '-m', 'gimsanet_arch.export'] + [str(a) for a in args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _diff_lines(stdout):
    return [line for line in stdout.splitlines() if 'max abs diff vs eager' in line]


def test_cli_basicsr_checkpoint_loads_params_ema(tmp_path):
    net, kwargs = _tiny('gimsanet_gray', seed=0)
    other, _ = _tiny('gimsanet_gray', seed=1)
    torch.save({'params': other.state_dict(), 'params_ema': net.state_dict()}, tmp_path / 'net_g_100.pth')
    result = _run_export(['--arch', 'GIMSANet', '--arch-args', json.dumps(kwargs), '--weights', 'net_g_100.pth',
                          '--out-dir', 'out', '--example-size', '32x32'], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    assert len(_diff_lines(result.stdout)) == 2
    x = _inputs(1)[0]
    got = OnnxModel(str(tmp_path / 'out' / 'net_g_100.opset18.onnx'))(x)
    with torch.no_grad():
        assert (got - net(x)).abs().max().item() <= TOL  # the params_ema weights ...
        assert (got - other(x)).abs().max().item() > 1e-2  # ... not the params ones
        module, stored = load_torchscript(str(tmp_path / 'out' / 'net_g_100.ts.pt'))
        assert (module(x) - net(x)).abs().max().item() <= TOL and stored['in_channels'] == '1'


def _official(kind, name):
    return torch.load(osp.join(FIXTURES, kind, f'{name}.pt'), map_location='cpu', weights_only=True)


def _assert_reproduces_official(out_dir, stem, ref):
    onnx_out = OnnxModel(str(out_dir / f'{stem}.opset18.onnx'))(ref['input'])
    module, _ = load_torchscript(str(out_dir / f'{stem}.ts.pt'))
    with torch.no_grad():
        ts_out = module(ref['input'])
    for label, out in (('onnx', onnx_out), ('torchscript', ts_out)):
        diff = (out - ref['output']).abs().max().item()
        print(f'{stem} {label} vs official output: {diff:.3g}')
        assert diff <= TOL


def test_cli_official_nafnet_fixture(tmp_path):
    ref = _official('nafnet', 'odd_19x23')
    result = _run_export(['--arch', ref['arch'], '--arch-args', json.dumps(ref['kwargs']), '--example-size', '32x32',
                          '--weights', osp.join(FIXTURES, 'nafnet', 'odd_19x23.pt'), '--out-dir', 'out',
                          '--onnx-exporter', 'torchscript'], tmp_path)  # the faster exporter (dynamo: above)
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    assert len(_diff_lines(result.stdout)) == 2
    _assert_reproduces_official(tmp_path / 'out', 'odd_19x23', ref)


def test_cli_official_restormer_fixture_from_option_file(tmp_path):
    ref = _official('restormer', 'color_biasfree')
    opt = {'name': 'tiny', 'network_g': dict(type=ref['arch'], **ref['kwargs']),
           'path': {'pretrain_network_g': osp.join(FIXTURES, 'restormer', 'color_biasfree.pt'),
                    'param_key_g': 'params'},
           'val': {'window_size': 8}}
    (tmp_path / 'test.yml').write_text(json.dumps(opt))  # JSON is YAML
    result = _run_export(['-opt', 'test.yml', '--out-dir', 'out', '--example-size', '32x32',
                          '--onnx-exporter', 'torchscript'], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    assert 'pad multiple 8, padded inside the graph' in result.stdout
    assert len(_diff_lines(result.stdout)) == 2
    _assert_reproduces_official(tmp_path / 'out', 'color_biasfree', ref)


def _main_error(capsys, argv, code, *needles):
    """Run the command's main in-process; it returns ``code`` and prints one error line."""
    assert main([str(a) for a in argv]) == code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('gimsanet-export: error: '), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return out


def test_cli_failed_check_is_one_line_and_nonzero(tmp_path, capsys):
    net, kwargs = _tiny('gimsanet_gray')
    torch.save({'params': net.state_dict()}, tmp_path / 'g.pth')
    out = _main_error(capsys, ['--arch', 'GIMSANet', '--arch-args', json.dumps(kwargs), '--weights', tmp_path / 'g.pth',
                               '--out-dir', tmp_path, '--formats', 'onnx', '--tol', '0', '--example-size', '32x32'],
                      1, 'max abs diff', 'exceeds the tolerance 0', 'g.opset18.onnx')
    assert len(_diff_lines(out)) == 1  # the difference is printed before failing


def test_cli_input_errors_are_one_line(tmp_path, capsys):
    net, kwargs = _tiny('restormer')
    torch.save(net.state_dict(), tmp_path / 'r.pth')
    weights, out_dir = tmp_path / 'r.pth', tmp_path / 'out'
    _main_error(capsys, ['--arch', 'NoSuchNet', '--weights', weights], 2, 'unknown architecture "NoSuchNet"',
                'Restormer')
    _main_error(capsys, ['--arch', 'Restormer', '--weights', tmp_path / 'missing.pth'], 2, 'missing.pth')
    _main_error(capsys, ['--arch', 'Restormer', '--arch-args', '[1, 2]', '--weights', weights], 2, 'mapping')
    _main_error(capsys, ['--arch', 'Restormer', '--arch-args', json.dumps(kwargs), '--weights', weights,
                         '--check-size', '32x32', '--example-size', '32x32'], 2, 'non-square')
    # without its padding, Restormer cannot take the (odd) check size: said before any export is made
    _main_error(capsys, ['--arch', 'Restormer', '--arch-args', json.dumps(kwargs), '--weights', weights,
                         '--pad-multiple', '1', '--out-dir', out_dir],
                1, 'eager Restormer (pad multiple 1) fails on a 1x3x45x37 input')
    assert not out_dir.exists()


def test_denoise_runs_an_onnx_file_like_the_eager_network(tmp_path):
    """gimsanet-denoise --onnx: the same output as --weights (fp32), with tiles and 16-bit images too."""
    import cv2
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    from gimsanet_arch.commands import denoise
    from gimsanet_arch.export.onnx_export import export_onnx
    torch.manual_seed(0)
    net = GIMSANet(in_channels=3, num_feat=4).eval()
    torch.save({'params': net.state_dict()}, tmp_path / 'tiny.pth')
    onnx_path = export_onnx(net, str(tmp_path), 'tiny', arch_args={'in_channels': 3, 'num_feat': 4})
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / 'a.png'), rng.integers(0, 65536, (37, 45, 3), dtype=np.uint16))
    common = ['--dtype', 'fp32', '--no-progress', '--tile', '32', '--tile-overlap', '8']
    assert denoise.main([str(tmp_path / 'a.png'), '-o', str(tmp_path / 'eager'), '--weights',
                         str(tmp_path / 'tiny.pth'), *common]) == 0
    assert denoise.main([str(tmp_path / 'a.png'), '-o', str(tmp_path / 'onnx'), '--onnx', onnx_path, *common]) == 0
    eager = cv2.imread(str(tmp_path / 'eager' / 'a.png'), cv2.IMREAD_UNCHANGED).astype(int)
    onnx = cv2.imread(str(tmp_path / 'onnx' / 'a.png'), cv2.IMREAD_UNCHANGED).astype(int)
    assert eager.shape == onnx.shape == (37, 45, 3) and np.abs(eager - onnx).max() <= 2  # of 65535
    # errors as for the PyTorch path: one line
    assert denoise.main([str(tmp_path / 'a.png'), '--onnx', str(tmp_path / 'missing.onnx')]) == 2
    (tmp_path / 'bad.onnx').write_bytes(b'not onnx')
    assert denoise.main([str(tmp_path / 'a.png'), '-o', str(tmp_path / 'x'), '--onnx', str(tmp_path / 'bad.onnx')]) == 2


def test_export_safetensors_converts_a_checkpoint(tmp_path):
    """gimsanet-export --formats safetensors: the weights alone, loadable by --weights with no --arch."""
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    from gimsanet_arch.training.checkpoint import load_checkpoint_file
    torch.manual_seed(0)
    net = GIMSANet(in_channels=1, num_feat=4)
    torch.save({'params': net.state_dict()}, tmp_path / 'g.pth')
    assert main(['--arch', 'GIMSANet', '--arch-args', '{in_channels: 1, num_feat: 4}', '--weights',
                 str(tmp_path / 'g.pth'), '--formats', 'safetensors', '--out-dir', str(tmp_path / 'out')]) == 0
    loaded = load_checkpoint_file(str(tmp_path / 'out' / 'g.safetensors'))['params']
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())
    from gimsanet_arch.inference.network import spec_from_weights
    spec = spec_from_weights(str(tmp_path / 'out' / 'g.safetensors'))
    assert spec.network_opt['in_channels'] == 1 and spec.network_opt['num_feat'] == 4
