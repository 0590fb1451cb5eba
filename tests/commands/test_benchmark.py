"""gimsanet-benchmark (gimsanet_arch.commands.benchmark) at tiny widths and sizes, and the measuring
code under it (gimsanet_arch.inference.benchmark / measure). No assertion depends on timings."""
import csv
import os
import subprocess
import sys

import pytest
import torch

from gimsanet_arch.commands import benchmark as command
from gimsanet_arch.commands import report
from gimsanet_arch.inference import benchmark, evaluate, measure, network

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tests'))
import tiny_data  # noqa: E402

DEFAULT_NAMES = [name for name, _, _ in benchmark.DEFAULT_MODELS]
TINY_NAFNET = {'type': 'NAFNet', 'img_channel': 3, 'width': 4, 'enc_blk_nums': [1], 'middle_blk_num': 1,
               'dec_blk_nums': [1]}


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_default_models_are_the_option_files_networks():
    assert DEFAULT_NAMES == ['GIMSANet', 'GIMSANet-gray', 'Restormer', 'NAFNet-w32', 'NAFNet-w64', 'SwinIR', 'RIDNet']
    for name, option_file, network_opt in benchmark.DEFAULT_MODELS:
        opt = network.load_yaml(os.path.join(REPO, 'options', 'test', option_file))
        assert dict(opt['network_g']) == network_opt, name


def test_cases_one_axis_at_a_time_or_every_combination():
    axes = benchmark.make_cases([16, 40], ['fp32', 'bf16'], [False, True], tile=24)
    assert [(c.size, c.dtype, c.channels_last, c.tile) for c in axes] == [
        (16, 'fp32', False, None), (16, 'bf16', False, None), (16, 'fp32', True, None),
        (40, 'fp32', False, None), (40, 'bf16', False, None), (40, 'fp32', True, None), (40, 'fp32', False, 24)]
    full = benchmark.make_cases([40], ['fp32', 'bf16'], [False, True], tile=24, grid='full')
    assert len(full) == len(set(full)) == 8
    some = benchmark.make_cases([16, 40], ['fp32', 'bf16'], [False, True], tile=24, variant_sizes=[40])
    assert some == [axes[0]] + axes[3:]
    with pytest.raises(ValueError, match='fp16'):
        benchmark.make_cases([16], ['fp16'])


@pytest.fixture(scope='module')
def speed_run(tmp_path_factory):
    """Every default model at its tiny width: two sizes, fp32/bf16, both layouts, whole and tiled."""
    out = tmp_path_factory.mktemp('bench') / 'out'
    argv = ['--tiny', '--sizes', '16', '40', '--tile', '24', '--tile-overlap', '8', '--runs', '1', '--mac-size', '16',
            '--no-progress', '--out', str(out)]
    return command.main(argv), out


def test_speed_run_writes_csv_markdown_and_chart(speed_run):
    code, out = speed_run
    assert code == 0
    rows = read_csv(out / 'benchmark.csv')
    assert list(rows[0].keys()) == command.SPEED_KEYS
    expected = set()
    for name in DEFAULT_NAMES:
        expected |= {(name, '16', d, lay, '') for d, lay in [('fp32', 'contiguous'), ('bf16', 'contiguous'),
                                                             ('fp32', 'channels_last')]}
        expected |= {(name, '40', d, lay, '') for d, lay in [('fp32', 'contiguous'), ('bf16', 'contiguous'),
                                                             ('fp32', 'channels_last')]}
        expected.add((name, '40', 'fp32', 'contiguous', '24'))
    assert {(r['model'], r['size'], r['dtype'], r['layout'], r['tile']) for r in rows} == expected
    assert len(rows) == len(expected)
    for r in rows:
        assert r['note'] in ('', 'bf16 emulated (no native bf16 here)'), r
        assert float(r['latency_ms']) > 0 and float(r['mp_per_s']) > 0 and float(r['peak_mem_mb']) > 0
        assert int(r['params']) > 0 and float(r['macs_per_pixel']) > 0 and r['runs'] == '1' and r['device'] == 'cpu'
        # tile 24 with overlap 8 over 40 pixels: windows at 0 and 16 in each direction
        assert r['tiles'] == ('4' if r['tile'] == '24' else '1')
        size = int(r['size'])
        assert float(r['mp_per_s']) == pytest.approx(size * size / 1e6 / (float(r['latency_ms']) / 1000), rel=1e-6)
    text = (out / 'benchmark.md').read_text()
    for heading in ('# Benchmark', '## Models', '## Latency (ms) per image size', '## All measurements'):
        assert heading in text
    assert '| Model' in text and 'ms fp32 tile 24' in text and 'Peak MB fp32 tile 24' in text
    assert all(f'| {name} ' in text for name in DEFAULT_NAMES)
    assert '## Quality' not in text
    if report.pyplot() is not None:
        import cv2
        assert cv2.imread(str(out / 'latency_vs_size.png')) is not None


def test_whole_image_peak_memory_grows_with_the_image(speed_run):
    _, out = speed_run
    peak = {(r['model'], r['size']): float(r['peak_mem_mb']) for r in read_csv(out / 'benchmark.csv')
            if r['dtype'] == 'fp32' and r['layout'] == 'contiguous' and not r['tile']}
    for name in DEFAULT_NAMES:
        assert peak[(name, '40')] > peak[(name, '16')], name


def test_peak_memory_is_measured_not_assumed():
    """A whole-image forward at 4x4 times the pixels needs at least one more full-size feature map;
    the same image in 32-pixel tiles needs less than the whole-image run."""
    net, multiple = network.build(network.ModelSpec('naf', TINY_NAFNET))
    small = benchmark.measure_case(net, 3, multiple, benchmark.Case(32), 'cpu', runs=1)
    large = benchmark.measure_case(net, 3, multiple, benchmark.Case(128), 'cpu', runs=1)
    feature_map = 4 * 4 * (128 * 128 - 32 * 32)  # width 4, float32
    assert (large['peak_mem_mb'] - small['peak_mem_mb']) * 2 ** 20 >= feature_map
    tiled = benchmark.measure_case(net, 3, multiple, benchmark.Case(128, tile=32), 'cpu', runs=1, overlap=8)
    assert tiled['tiles'] == 25 and tiled['peak_mem_mb'] < large['peak_mem_mb']


def test_case_seconds_cuts_the_timed_runs():
    net, multiple = network.build(network.ModelSpec('naf', TINY_NAFNET))
    case = benchmark.Case(16)
    assert benchmark.measure_case(net, 3, multiple, case, 'cpu', runs=3)['runs'] == 3
    assert benchmark.measure_case(net, 3, multiple, case, 'cpu', runs=3, case_seconds=1e-9)['runs'] == 1
    assert benchmark.measure_case(net, 3, multiple, case, 'cpu', runs=3, case_seconds=1e9)['runs'] == 3


def test_peak_of_allocation_events():
    assert measure.peak_from_events([(3, -10), (1, 10), (2, 5), (4, 20), (5, -25)]) == 25
    assert measure.peak_from_events([]) == 0


def test_cuda_code_paths_on_cpu(monkeypatch):
    """The CUDA branches (synchronize, max_memory_allocated) with stand-ins for torch.cuda."""
    calls = []
    state = {'allocated': 100, 'peak': 100}
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda device=None: calls.append('sync'))
    monkeypatch.setattr(torch.cuda, 'reset_peak_memory_stats', lambda device=None: state.update(peak=state['allocated']))
    monkeypatch.setattr(torch.cuda, 'memory_allocated', lambda device=None: state['allocated'])
    monkeypatch.setattr(torch.cuda, 'max_memory_allocated', lambda device=None: state['peak'])

    def call():  # allocates 500 bytes, frees 300
        state['peak'] = max(state['peak'], state['allocated'] + 500)
        state['allocated'] += 200
    assert measure.peak_bytes(call, 'cuda') == (500, 'torch.cuda.max_memory_allocated')
    calls.clear()
    median, times = measure.median_seconds(lambda: None, 'cuda', runs=3, warmup=2)
    assert calls.count('sync') == 4 and len(times) == 3 and median in times
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert measure.resolve_device('auto') == torch.device('cpu')
    with pytest.raises(ValueError, match='no CUDA device'):
        measure.resolve_device('cuda')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert measure.resolve_device('auto') == torch.device('cuda')


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('bench_models')
    tiny_data.write_folder(str(root / 'imgs'), 2, (30, 35), 3, seed=7)
    from basicsr.archs import build_network
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(TINY_NAFNET)).state_dict()}, root / 'naf.pth')
    (root / 'naf.yml').write_text('network_g: {type: NAFNet, img_channel: 3, width: 4, enc_blk_nums: [1], '
                                  'middle_blk_num: 1, dec_blk_nums: [1]}\n')
    (root / 'res.yml').write_text('network_g: {type: Restormer, inp_channels: 3, out_channels: 3, dim: 4, '
                                  'num_blocks: [1, 1, 1, 1], num_refinement_blocks: 1, heads: [1, 1, 1, 1]}\n')
    (root / 'bad_type.yml').write_text('network_g: {type: NoSuchNet}\n')
    return root


def test_quality_uses_the_compare_protocol(models, tmp_path):
    out = tmp_path / 'out'
    argv = ['--model', f'naf={models / "naf.yml"}:{models / "naf.pth"}', '--model', f'res={models / "res.yml"}',
            '--data', str(models / 'imgs'), '--sigmas', '15', '50', '--sizes', '16', '--dtypes', 'fp32',
            '--channels-last', 'off', '--runs', '1', '--no-progress', '--out', str(out)]
    assert command.main(argv) == 0
    rows = read_csv(out / 'quality.csv')
    assert list(rows[0].keys()) == command.QUALITY_KEYS
    assert {(r['model'], float(r['sigma'])) for r in rows} == {(m, s) for m in ('naf', 'res') for s in (15., 50.)}
    assert {r['weights'] for r in rows if r['model'] == 'naf'} == {str(models / 'naf.pth')}
    assert {r['weights'] for r in rows if r['model'] == 'res'} == {'random'}
    speed = read_csv(out / 'benchmark.csv')
    assert {(r['model'], r['size']) for r in speed} == {('naf', '16'), ('res', '16')}
    # the same numbers as the compare command's evaluation of the same model
    spec = network.spec_from_model_arg(f'naf={models / "naf.yml"}:{models / "naf.pth"}')
    expected, _ = evaluate.evaluate([spec], [str(models / 'imgs')], [15, 50], time_size=16, time_runs=1,
                                    progress=False)
    for want in expected:
        got = next(r for r in rows if r['model'] == 'naf' and float(r['sigma']) == want['sigma'])
        assert float(got['psnr']) == pytest.approx(want['psnr'], abs=1e-9)
        assert float(got['ssim']) == pytest.approx(want['ssim'], abs=1e-9)
        assert 0 < float(got['psnr']) < 60 and got['images'] == '2'
    text = (out / 'benchmark.md').read_text()
    assert '## Quality' in text and '| naf ' in text
    if report.pyplot() is not None:
        import cv2
        for name in ('psnr_vs_sigma.png', 'psnr_vs_macs.png', 'latency_vs_size.png'):
            assert cv2.imread(str(out / name)) is not None, name


def test_without_matplotlib_the_charts_are_skipped_with_a_note(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, 'pyplot', lambda: None)
    out = tmp_path / 'out'
    argv = ['--model', f'naf={models / "naf.yml"}', '--sizes', '16', '--dtypes', 'fp32', '--channels-last', 'off',
            '--runs', '1', '--no-progress', '--out', str(out)]
    assert command.main(argv) == 0
    assert 'matplotlib is not installed' in capsys.readouterr().out
    assert (out / 'benchmark.csv').exists() and not (out / 'latency_vs_size.png').exists()


@pytest.mark.parametrize('bad,message', [
    ('naf', 'expected NAME=ARCH_OPTIONS_YAML'),
    ('x={root}/missing.yml', 'option file not found'),
    ('x={root}/bad_type.yml', "'NoSuchNet' is not a registered architecture"),
    ('x={root}/naf.yml:{root}/missing.pth', 'checkpoint not found'),
    ('GIMSANet={root}/naf.yml', 'model names must differ'),
])
def test_a_bad_model_argument_is_one_clear_error(models, capsys, bad, message):
    argv = ['--model', bad.format(root=models), '--no-progress', '--out', str(models / 'never')]
    if bad.startswith('GIMSANet'):
        argv.append('--default-models')
    assert command.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith('gimsanet-benchmark: error:') and message in err, err
    assert not (models / 'never').exists()


def test_module_entry_point_reports_a_bad_model_without_traceback():
    res = subprocess.run([sys.executable, '-m', 'gimsanet_arch.commands.benchmark', '--model', 'nonsense'],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore'))
    assert res.returncode == 2
    assert 'Traceback' not in res.stderr and "--model 'nonsense'" in res.stderr, res.stderr
