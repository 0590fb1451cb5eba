"""The performance report (benchmarks/perf, ``python -m benchmarks.perf``; outside the installed
package): the plumbing at tiny sizes, and the arithmetic of the report from given numbers. No
assertion depends on timings."""
import csv
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:  # benchmarks/ is imported from the repository root, like the scripts
    sys.path.insert(0, REPO)

from benchmarks.perf import command, perf_report  # noqa: E402
from benchmarks.perf import data_rate, official, op_profile, results, training_step  # noqa: E402
from benchmarks.perf import photos as photo_data  # noqa: E402
from benchmarks.perf.results import Target, row  # noqa: E402
from gimsanet_arch.commands import report  # noqa: E402
from gimsanet_arch.inference import network  # noqa: E402


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


DEMO_OPT = os.path.join(REPO, 'options', 'train', 'GIMSANet', 'train_GIMSANet_demo_skimage.yml')
SECTIONS = {'targets', 'roofline', 'gimsanet', 'gimsanet quality', 'profile', 'profile gap', 'training', 'data loading',
            'official', 'official outputs'}
# stand-ins for the official files (the tests have no official code): the plugin's own classes, imported
# the way the official files import their helpers, so the import shim is exercised
FAKE_OFFICIAL = {
    'Restormer/basicsr/models/archs/restormer_arch.py':
        'from gimsanet_arch.archs.restormer_arch import Restormer as PluginRestormer\n\n\n'
        'class Restormer(PluginRestormer):\n    pass\n',
    'NAFNet/basicsr/models/archs/arch_util.py': 'from basicsr.utils import get_root_logger  # noqa: F401\n\n\n'
                                                'class LayerNorm2d:\n    pass\n',
    'NAFNet/basicsr/models/archs/local_arch.py': 'class Local_Base:\n    pass\n',
    'NAFNet/basicsr/models/archs/NAFNet_arch.py':
        'from basicsr.models.archs.arch_util import LayerNorm2d  # noqa: F401\n'
        'from basicsr.models.archs.local_arch import Local_Base  # noqa: F401\n'
        'from gimsanet_arch.archs.nafnet_arch import NAFNet as PluginNAFNet\n\n\n'
        'class NAFNet(PluginNAFNet):\n    pass\n',
}


def numbers(csv_rows):
    """``{(section, name, metric): float}`` of the measured CSV rows."""
    out = {}
    for r in csv_rows:
        try:
            out[(r['section'], r['name'], r['metric'])] = float(r['value'])
        except ValueError:
            pass
    return out


def write_fake_official(root):
    for relative, text in FAKE_OFFICIAL.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# ------------------------------------------------------------------------------ arithmetic
def test_a_target_is_the_ratio_of_the_named_rows():
    rows = [row('a', 'x', 'GMAC/s', 300.), row('a', 'y', 'GMAC/s', 400.), row('b', 'dB', 'change', 0.08),
            row('a', 'zero', 'GMAC/s', 0.), row('a', 'off', 'GMAC/s', None, note='skipped: no code')]
    ratio = results.check(Target('x/y', ('a', 'x', 'GMAC/s'), ('a', 'y', 'GMAC/s'), '>=', 0.85), rows)
    assert ratio['value'] == pytest.approx(0.75) and ratio['result'] == 'FAIL' and ratio['target'] == '>= 0.85'
    assert ratio['section'] == 'targets' and 'x GMAC/s / y GMAC/s' in ratio['note']
    lower = Target('x/y', ('a', 'x', 'GMAC/s'), ('a', 'y', 'GMAC/s'), '>=', 0.75)
    assert results.check(lower, rows)['result'] == 'PASS'
    alone = results.check(Target('psnr', ('b', 'dB', 'change'), None, '<=', 0.05, 'dB'), rows)
    assert alone['value'] == pytest.approx(0.08) and alone['result'] == 'FAIL' and alone['target'] == '<= 0.05 dB'
    skipped = results.check(Target('s', ('a', 'off', 'GMAC/s'), ('a', 'y', 'GMAC/s'), '>=', 1.), rows)
    assert skipped['value'] is None and skipped['result'] == 'n/a' and skipped['note'] == 'skipped: no code'
    absent = results.check(Target('m', ('a', 'nothing', 'GMAC/s'), None, '>=', 1.), rows)
    assert absent['result'] == 'n/a' and absent['note'] == 'not measured: a / nothing / GMAC/s'
    assert results.check(Target('z', ('a', 'x', 'GMAC/s'), ('a', 'zero', 'GMAC/s'), '>=', 1.), rows)['result'] == 'n/a'
    with pytest.raises(ValueError, match='op must be'):
        Target('bad', ('a', 'x', 'GMAC/s'), None, '>', 1.)


def test_ops_fall_into_categories_and_the_gap_into_parts():
    assert [op_profile.category(n) for n in ('aten::mkldnn_convolution', 'aten::conv2d', 'aten::constant_pad_nd',
                                             'aten::cat', 'aten::leaky_relu_', 'aten::sigmoid', 'aten::add_',
                                             'aten::sqrt', 'aten::_to_copy', 'aten::copy_', 'aten::empty')] == [
        'conv', 'conv', 'pad', 'cat', 'activation', 'activation', 'elementwise', 'elementwise', 'copy', 'copy', 'other']
    op_times = [('aten::mkldnn_convolution', 3000.), ('aten::conv2d', 0.), ('aten::cat', 500.), ('aten::add', 500.)]
    assert op_profile.sum_by_category(op_times) == dict(conv=3000., pad=0., cat=500., activation=0., elementwise=500.,
                                                        copy=0., other=0.)
    share = {r['name']: r['value'] for r in op_profile.profile_rows('v', op_times) if r['metric'] == 'v share'}
    assert share['conv'] == pytest.approx(75.) and sum(share.values()) == pytest.approx(100.)
    # 2 GMAC at 1000 GMAC/s: 2 ms ideal of 4 ms profiled; the conv's extra 1 ms is half the gap
    gap = {r['metric']: r['value'] for r in op_profile.gap_rows('v', op_times, 2e9, 1000.)}
    assert gap['profiled'] == pytest.approx(4.) and gap['ideal'] == pytest.approx(2.)
    assert gap['gap'] == pytest.approx(2.)
    assert gap['conv above the rate'] == pytest.approx(50.)
    assert gap['cat'] == pytest.approx(25.) and gap['elementwise'] == pytest.approx(25.) and gap['pad'] == 0.


def test_worker_guidance_from_the_measured_rates():
    ahead, text = data_rate.worker_guidance(one_worker=100., consumption=30.)
    assert ahead == 2 and 'num_worker_per_gpu 1 keeps up, 2 keeps 5x ahead' in text
    assert data_rate.worker_guidance(one_worker=10., consumption=30.)[0] == 15


def test_training_options_are_the_demo_option_file():
    opt = network.load_yaml(DEMO_OPT)
    for key in ('network_g', 'train'):
        assert training_step.DEMO_OPTIONS[key] == opt[key], key
    assert training_step.DEMO_OPTIONS['datasets']['train'] == opt['datasets']['train']
    built = training_step.demo_options(batch=2, patch=16, lmdb='x.lmdb', workers=0, bf16=False)
    assert built['datasets']['train']['batch_size_per_gpu'] == 2 and built['datasets']['train']['gt_size'] == 16
    assert built['train']['bf16'] is False and training_step.DEMO_OPTIONS['train']['bf16'] == 'auto'


def test_report_numbers_and_pivot():
    assert [perf_report.number(v) for v in (None, 1234.5, 12.34, 0.5, 1e-6, 3, float('inf'))] == [
        '-', '1,234', '12.3', '0.500', '1.00e-06', '3', 'inf']
    lines, columns = perf_report.pivot([row('s', 'a', 'ms', 2.), row('s', 'a', 'GMAC/s', 5., 'GMAC/s', 'fp32'),
                                        row('s', 'b', 'ms', 3.), row('s', 'b', 'error', None, note='error: boom')])
    assert [c[1] for c in columns] == ['', 'ms', 'GMAC/s', 'Note']
    assert lines == [{'name': 'a', 'ms': '2.000', 'GMAC/s': '5.000', 'note': 'fp32'},
                     {'name': 'b', 'ms': '3.000', 'note': 'error: boom'}]


# ------------------------------------------------------------------------------ official code
def test_official_code_loads_through_the_shim_and_leaves_basicsr_alone(tmp_path):
    root = write_fake_official(tmp_path / 'official')
    cls = official.load_official_class(str(root), 'NAFNet')
    assert cls.__name__ == 'NAFNet' and 'basicsr.models.archs' not in sys.modules
    assert official.load_official_class(str(root), 'Restormer').__name__ == 'Restormer'
    with pytest.raises(official.OfficialCodeMissing, match='NAFNet_arch.py'):
        official.load_official_class(str(tmp_path / 'nowhere'), 'NAFNet')


def test_missing_official_code_skips_the_section_with_a_note(tmp_path, capsys):
    out = tmp_path / 'out'
    argv = ['--quick', '--sections', 'official', '--official-root', str(tmp_path / 'nowhere'),
            '--out', str(out)]
    assert command.main(argv) == 0
    rows = read_csv(out / 'perf.csv')
    skipped = [r for r in rows if r['section'] == 'official']
    assert len(skipped) == 2 and all(r['note'].startswith('skipped: official') for r in skipped)
    targets = [r for r in rows if r['section'] == 'targets']
    assert len(targets) == 8 and all(r['result'] == 'n/a' for r in targets)
    assert all('not found' in r['note'] or 'not measured' in r['note'] for r in targets)
    assert 'skipped: official Restormer code not found' in (out / 'perf.md').read_text()


def test_bad_official_weights_are_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.parse_args(['--official-weights', 'SwinIR=x.pth'])
    assert exit_info.value.code == 2 and 'NAME one of Restormer, NAFNet-w32' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        command.parse_args(['--official-weights', f'Restormer={tmp_path / "missing.pth"}'])
    assert 'checkpoint not found' in capsys.readouterr().err


# ------------------------------------------------------------------------------ one quick run
@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    root = write_fake_official(tmp_path_factory.mktemp('official'))
    out = tmp_path_factory.mktemp('perf') / 'out'
    argv = ['--quick', '--official-root', str(root), '--train-lmdb', str(root / 'no.lmdb'), '--out', str(out)]
    return command.main(argv), out


def test_quick_run_writes_every_section(quick_run):
    code, out = quick_run
    assert code == 0
    rows = read_csv(out / 'perf.csv')
    assert list(rows[0]) == results.KEYS
    assert {r['section'] for r in rows} == SECTIONS
    assert not [r for r in rows if r['note'].startswith('error')]
    text = (out / 'perf.md').read_text()
    for section in SECTIONS:
        assert f'## {perf_report.SECTION_TEXT[section][0]}\n' in text, section
    assert '--quick' in text and 'random weights' in text
    losses = read_csv(out / 'training_loss.csv')
    assert len(losses) == command.QUICK['train_iters'] and list(losses[0]) == ['iteration', 'loss_fp32', 'loss_bf16']
    assert all(float(r['loss_fp32']) > 0 and float(r['loss_bf16']) > 0 for r in losses)
    if report.pyplot() is not None:
        import cv2
        assert cv2.imread(str(out / 'training_loss.png')) is not None


def test_quick_run_targets_are_the_ratios_of_its_rows(quick_run):
    _, out = quick_run
    rows = read_csv(out / 'perf.csv')
    measured = numbers(rows)
    args = command.parse_args(['--quick'])
    targets = {t.name: t for t in command.targets(args)}
    target_rows = [r for r in rows if r['section'] == 'targets']
    assert [r['name'] for r in target_rows] == list(targets)
    for r in target_rows:
        target = targets[r['name']]
        if r['result'] == 'n/a':
            continue
        expected = measured[target.numerator] / (measured[target.denominator] if target.denominator else 1.)
        assert float(r['value']) == pytest.approx(expected, rel=1e-6), r['name']
        assert r['result'] == ('PASS' if results.passes(expected, target.op, target.limit) else 'FAIL')
    # the fastest bf16 variant is the best measured bf16 variant besides the reference (the note of a
    # timing row is its dtype: the default path counts too where it runs bf16)
    bf16 = [float(r['value']) for r in rows if r['section'] == 'gimsanet' and r['metric'] == 'GMAC/s'
            and r['note'] == 'bf16' and r['name'] != 'fastest bf16']
    assert measured[('gimsanet', 'fastest bf16', 'GMAC/s')] == max(bf16)


def test_quick_run_compares_with_the_official_stand_ins(quick_run):
    _, out = quick_run
    rows = read_csv(out / 'perf.csv')
    measured = numbers(rows)
    for name in ('Restormer', 'NAFNet-w32'):
        # the stand-in is the plugin's own class: same weights, the same fp32 output (within the fast path's tolerance)
        assert measured[('official outputs', f'{name} plugin fp32', 'max abs')] <= 1e-5
        result = {r['name']: r for r in rows if r['section'] == 'targets'}
        assert result[f'{name} fp32 max abs vs official']['result'] == 'PASS'
        assert result[f'{name} bf16 PSNR change vs official fp32']['result'] == 'n/a'
        ours, theirs = (measured[('official', f'{name} {impl}', 'MP/s')] for impl in ('plugin fp32', 'official fp32'))
        assert measured[('official', f'{name} plugin fp32', 'x official fp32')] == pytest.approx(ours / theirs)
    assert 'basicsr.models.archs' not in sys.modules


def test_psnr_change_is_the_largest_over_the_photos():
    rng = np.random.default_rng(0)
    photos = {name: rng.random((8, 8, 3)).astype(np.float32) for name in ('a', 'b')}
    outputs = {'ref': {n: np.clip(p + 0.02, 0, 1) for n, p in photos.items()},
               'var': {'a': np.clip(photos['a'] + 0.02, 0, 1), 'b': np.clip(photos['b'] + 0.05, 0, 1)}}
    change, metric, max_abs = photo_data.psnr_change(outputs, photos, 'ref', 'var', trained=True)
    expected = abs(photo_data.psnr(outputs['var']['b'], photos['b'])
                   - photo_data.psnr(outputs['ref']['b'], photos['b']))
    assert metric == 'PSNR change' and change == pytest.approx(expected) and change > 1
    assert max_abs == pytest.approx(0.03, abs=1e-6)
    between, metric, _ = photo_data.psnr_change(outputs, photos, 'ref', 'var', trained=False)
    assert metric == 'PSNR vs reference output'
    assert between == pytest.approx(photo_data.psnr(outputs['var']['b'], outputs['ref']['b']))
