"""The ``basicsr train|test`` command: errors people meet are one clear line, exit code 2.

One case runs a fresh interpreter (nothing printed while it starts); the others fork from a warm one
(``run_basicsr_warm``): the same command, without importing torch again."""
import os.path as osp

import pytest
import yaml

from conftest import REPO_ROOT, run_basicsr, run_basicsr_warm

TINY = osp.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')


def _one_line_error(result, *needles):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert 'Traceback' not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def tiny_data(tmp_path):
    from tiny_data import write_folder
    write_folder(tmp_path / 'datasets' / 'tiny' / 'train', 2, 32)
    write_folder(tmp_path / 'datasets' / 'tiny' / 'val', 1, 24)
    return tmp_path


def test_usage_and_help(tmp_path):
    assert run_basicsr_warm([], tmp_path).returncode == 2
    result = run_basicsr_warm(['train', '--help'], tmp_path)
    assert result.returncode == 0 and '-opt' in result.stdout


def test_missing_option_file(tmp_path):
    _one_line_error(run_basicsr(['train', '-opt', 'nope.yml'], tmp_path), 'option file not found', 'nope.yml')


def test_invalid_yaml(tmp_path):
    bad = tmp_path / 'bad.yml'
    bad.write_text('name: x\ndatasets: [\n  oops: 1\n')
    _one_line_error(run_basicsr_warm(['test', '-opt', str(bad)], tmp_path), 'invalid YAML', 'bad.yml', 'line')


@pytest.mark.parametrize('force, section, registry, suggestion', [
    ('network_g:type=GIMSANett', 'network_g.type', 'ARCH_REGISTRY', 'GIMSANet'),
    ('model_type=DenoiseModle', 'model_type', 'MODEL_REGISTRY', 'DenoiseModel'),
    ('datasets:train:type=GaussianNoiseDatset', 'datasets.train.type', 'DATASET_REGISTRY', 'GaussianNoiseDataset'),
    ('train:grad_opt:type=GradLoss', 'train.grad_opt.type', 'LOSS_REGISTRY', 'GradientLoss'),
    ('val:metrics:psnr:type=calculate_pnsr', 'val.metrics.psnr.type', 'METRIC_REGISTRY', 'calculate_psnr'),
])
def test_unknown_type_names_registry_and_closest(tiny_data, force, section, registry, suggestion):
    line = _one_line_error(run_basicsr_warm(['train', '-opt', TINY, '--force_yml', force], tiny_data),
                           section, registry, f'Did you mean "{suggestion}"')
    assert 'Registered:' in line


def test_missing_dataset_folder_and_lmdb(tiny_data):
    _one_line_error(run_basicsr_warm(['train', '-opt', TINY, '--force_yml', 'datasets:val:dataroot_gt=nowhere/val'],
                                     tiny_data), 'datasets.val.dataroot_gt', 'nowhere/val')
    _one_line_error(
        run_basicsr_warm(['train', '-opt', TINY, '--force_yml', 'datasets:train:dataroot_gt=datasets/x.lmdb',
                          'datasets:train:io_backend:type=lmdb'], tiny_data), 'LMDB not found', 'datasets/x.lmdb')
    assert not (tiny_data / 'experiments').exists()  # nothing created for a run that could not start


def test_option_files_of_the_project_parse_and_name_known_types():
    import glob
    from gimsanet_arch.commands.option_checks import check_types
    from gimsanet_arch.options import load_yaml
    files = glob.glob(osp.join(REPO_ROOT, 'options', '**', '*.yml'), recursive=True)
    assert len(files) >= 20
    for path in files:
        opt = load_yaml(path)
        check_types(opt)
        assert yaml.safe_load(open(path))['name'] == opt['name']
