"""``basicsr train|test`` refuses what it cannot honour, in one line, before anything on disk changes
(issue 32): a run name that is not one plain folder name (it would archive, or train into, a folder
outside ``experiments/``), and an argument it does not know (``--auto-resume`` was silently ignored:
the run was archived and restarted from iteration 0)."""
import os
import os.path as osp
import sys

import pytest
import yaml

from conftest import REPO_ROOT, run_basicsr_warm
from tiny_data import write_folder

TINY_OPT = f'{REPO_ROOT}/tests/options/train_GIMSANet_tiny.yml'


def _listing(folder):
    """Every file and folder under ``folder`` (folders too: a renamed or new empty one counts)."""
    out = []
    for root, dirs, names in os.walk(folder):
        out += [osp.relpath(osp.join(root, n), folder) + '/' for n in dirs]
        out += [osp.relpath(osp.join(root, n), folder) for n in names]
    return sorted(out)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """``tmp_path/work`` (the working directory and --root) with tiny data, an earlier run named
    ``tiny_GIMSANet`` and a user folder ``data/``; ``tmp_path`` itself is what ``../..`` reaches."""
    root = tmp_path / 'work'
    write_folder(root / 'datasets' / 'tiny' / 'train', 3, 40)
    write_folder(root / 'datasets' / 'tiny' / 'val', 1, 28, seed=5)
    (root / 'data').mkdir()
    (root / 'data' / 'mine.txt').write_text('the user\'s own file')
    (root / 'experiments' / 'tiny_GIMSANet').mkdir(parents=True)
    (root / 'experiments' / 'tiny_GIMSANet' / 'marker.txt').write_text('earlier run')
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    return root


def _one_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in lines[0], lines
    return lines[0]


BAD_NAMES = ['../data', '../../escape', 'a/b', '', '.', '..', 'ABSOLUTE', 'a\\b', 'x\0y', 'data/..']


@pytest.mark.parametrize('name', BAD_NAMES, ids=repr)
def test_a_run_name_that_is_not_one_folder_name_is_refused(work, capsys, name):
    from gimsanet_arch.commands.basicsr_cli import run
    if name == 'ABSOLUTE':
        name = str(work.parent / 'abs_run')
    before = _listing(work.parent)
    code = run('train', ['-opt', TINY_OPT, '--root', str(work), '--force_yml', f'name={name}',
                         'train:total_iter=1', 'val:val_freq=1000'])
    line = _one_line(capsys)
    assert code == 2 and line.startswith('basicsr train: error: name: ') and repr(name) in line, line
    assert _listing(work.parent) == before  # nothing archived, created or renamed, here or above


def test_the_run_name_of_an_option_file_and_of_basicsr_test_is_checked_too(work, capsys):
    from gimsanet_arch.commands.basicsr_cli import run
    with open(TINY_OPT) as f:
        opt = yaml.safe_load(f)
    opt['name'] = '../data'
    (work / 'escape.yml').write_text(yaml.safe_dump(opt))
    before = _listing(work.parent)
    assert run('train', ['-opt', 'escape.yml', '--root', str(work)]) == 2
    assert "name: '../data'" in _one_line(capsys)
    assert _listing(work.parent) == before
    test_opt = {'name': '../../escape', 'model_type': 'DenoiseModel', 'scale': 1, 'num_gpu': 0,
                'datasets': {'test_1': opt['datasets']['val']}, 'network_g': opt['network_g'],
                'path': {'pretrain_network_g': None}, 'val': {'metrics': opt['val']['metrics']}}
    (work / 'test.yml').write_text(yaml.safe_dump(test_opt))
    before = _listing(work.parent)
    assert run('test', ['-opt', 'test.yml', '--root', str(work), '--allow-random-weights']) == 2
    assert "name: '../../escape'" in _one_line(capsys)
    assert _listing(work.parent) == before


UNKNOWN_ARGUMENTS = [
    ('train', ['--auto-resume'], '--auto-resume', '--auto_resume'),
    ('train', ['--force-yml', 'train:total_iter=1'], '--force-yml', '--force_yml'),
    ('train', ['--trust_checkpoint'], '--trust_checkpoint', '--trust-checkpoint'),
    ('train', ['--debgu'], '--debgu', '--debug'),
    ('train', ['--allow-random-weights'], '--allow-random-weights', None),  # test only
    ('test', ['--allow_random_weights'], '--allow_random_weights', '--allow-random-weights'),
    ('train', ['options.yml'], 'options.yml', None),
]


@pytest.mark.parametrize('phase, extra, bad, suggestion', UNKNOWN_ARGUMENTS,
                         ids=[' '.join(c[1]) for c in UNKNOWN_ARGUMENTS])
def test_an_unknown_argument_is_refused_with_a_did_you_mean(work, capsys, phase, extra, bad, suggestion):
    from gimsanet_arch.commands.basicsr_cli import run
    before = _listing(work.parent)
    code = run(phase, ['-opt', TINY_OPT, '--root', str(work), *extra])
    line = _one_line(capsys)
    assert code == 2 and line.startswith(f'basicsr {phase}: error: ') and bad in line, line
    if suggestion:
        assert f'did you mean {suggestion}?' in line, line
    assert _listing(work.parent) == before  # the earlier run of that name is not archived


def test_the_real_command_refuses_auto_resume_with_a_hyphen(work):
    before = _listing(work.parent)
    result = run_basicsr_warm(['train', '-opt', TINY_OPT, '--auto-resume'], str(work))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ['basicsr train: error: unknown argument --auto-resume (did you mean --auto_resume?)'], lines
    assert _listing(work.parent) == before
