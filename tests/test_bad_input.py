"""Bad input stops a run with ONE clear error line naming the file or key, exit code != 0, and
leaves nothing behind: no experiment folder created, no earlier one archived or lost.

Most cases are caught by the up-front checks (before BasicSR creates anything) and run in-process
through ``gimsanet_arch.commands.basicsr_cli.run``; the cases only visible at run time (a corrupt image that is not
the first, non-finite losses) run the real command in a subprocess, forked from a warm interpreter
(``run_basicsr_warm``) except one that starts a fresh one.
"""
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_OPT = osp.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from conftest import run_basicsr, run_basicsr_warm  # noqa: E402


def make_images(folder, n, size=48, seed=0, channels=3):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    paths = []
    for i in range(n):
        img = cv2.GaussianBlur((rng.rand(size, size, channels) * 255).astype(np.uint8), (5, 5), 2)
        paths.append(osp.join(folder, f'im{i}.png'))
        cv2.imwrite(paths[-1], img)
    return paths


def base_opt(root):
    with open(TINY_OPT) as f:
        opt = yaml.safe_load(f)
    opt['name'] = 'bad'
    opt['datasets']['train']['dataroot_gt'] = osp.join(root, 'train')
    opt['datasets']['val']['dataroot_gt'] = osp.join(root, 'val')
    opt['train']['total_iter'] = 2
    return opt


def write_lmdb(path, items):
    import lmdb
    env = lmdb.open(path, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, img in items.items():
            txn.put(key.encode('ascii'), cv2.imencode('.png', img)[1].tobytes())
    env.close()


def write_checkpoint(path, num_feat=8, drop=None, extra=None):
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    state = GIMSANet(in_channels=3, num_feat=num_feat).state_dict()
    if drop:
        state.pop(drop(state))
    if extra:
        state[extra] = torch.zeros(1)
    torch.save({'params': state}, path)


# ----------------------------------------------------------------------------- the cases
def corrupt_file(root, opt):
    path = osp.join(root, 'train', 'im1.png')
    with open(path, 'wb') as f:
        f.write(b'this is not an image')
    return 'corrupt or unreadable image (not a PNG file): ' + path


def truncated_png(root, opt):
    path = osp.join(root, 'train', 'im2.png')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return 'truncated or corrupt PNG (no IEND chunk): ' + path


def empty_folder(root, opt):
    os.makedirs(osp.join(root, 'empty'))
    opt['datasets']['train']['dataroot_gt'] = osp.join(root, 'empty')
    return 'no images'


def gray_for_in_ch_3(root, opt):
    path = osp.join(root, 'train', 'im3.png')
    cv2.imwrite(path, np.zeros((48, 48), np.uint8))
    return 'image has 1 channel(s) but in_ch is 3: ' + path


def image_smaller_than_gt_size(root, opt):
    opt['datasets']['train']['gt_size'] = 64
    return 'smaller than gt_size 64'


def lmdb_missing_key(root, opt):
    img = cv2.imread(osp.join(root, 'train', 'im0.png'))
    write_lmdb(osp.join(root, 'train.lmdb'), {'im0': img, 'im1': img})
    with open(osp.join(root, 'train.lmdb', 'meta_info.txt'), 'w') as f:
        f.write('im0.png (48,48,3) 1\nim1.png (48,48,3) 1\nim7.png (48,48,3) 1\n')
    opt['datasets']['train'].update(dataroot_gt=osp.join(root, 'train.lmdb'), io_backend={'type': 'lmdb'})
    return 'im7'


def lmdb_wrong_meta_info(root, opt):
    img = cv2.imread(osp.join(root, 'train', 'im0.png'))
    write_lmdb(osp.join(root, 'train.lmdb'), {'a': img})
    with open(osp.join(root, 'other_meta.txt'), 'w') as f:
        f.write('b.png (48,48,3) 1\n')
    opt['datasets']['train'].update(dataroot_gt=osp.join(root, 'train.lmdb'), io_backend={'type': 'lmdb'},
                                    meta_info_file=osp.join(root, 'other_meta.txt'))
    return 'other_meta.txt not in LMDB'


def missing_meta_info_file(root, opt):
    opt['datasets']['train']['meta_info_file'] = osp.join(root, 'nope.txt')
    return 'nope.txt'


def checkpoint_wrong_width(root, opt):
    path = osp.join(root, 'wide.pth')
    write_checkpoint(path, num_feat=16)
    opt['path']['pretrain_network_g'] = path
    return 'shape mismatch'


def checkpoint_missing_and_extra_keys(root, opt):
    path = osp.join(root, 'keys.pth')
    write_checkpoint(path, drop=lambda s: sorted(s)[0], extra='head.extra_weight')
    opt['path']['pretrain_network_g'] = path
    return 'unexpected in file (1): head.extra_weight'


def misspelt_dataset_key(root, opt):
    opt['datasets']['train']['sigma_rnage'] = opt['datasets']['train'].pop('sigma_range')
    return 'datasets.train: unknown option "sigma_rnage" (BasicSR would silently ignore it). Did you mean "sigma_range"?'


def misspelt_train_key(root, opt):
    opt['train']['ema_decy'] = opt['train'].pop('ema_decay')
    return 'train: unknown option "ema_decy" (BasicSR would silently ignore it). Did you mean "ema_decay"?'


def misspelt_val_key(root, opt):
    opt['val']['tile_overlp'] = 8
    return 'Did you mean "tile_overlap"?'


def unknown_val_dtype(root, opt):
    opt['val']['dtype'] = 'fp16'
    return "val.dtype: unknown value 'fp16'; expected one of auto, fp32, bf16"


def misspelt_network_argument(root, opt):
    opt['network_g']['num_feats'] = opt['network_g'].pop('num_feat')
    return 'network_g (GIMSANet arguments): unknown option "num_feats"'


def truncated_lmdb(root, opt):
    """An interrupted copy or a full disk: reading it would end the process with SIGBUS."""
    from gimsanet_prep.build import build_lmdb
    from gimsanet_prep.jobs import single_image_jobs
    paths = sorted(os.listdir(osp.join(root, 'train')))
    items = [(osp.splitext(p)[0], osp.join(root, 'train', p)) for p in paths]
    build_lmdb(osp.join(root, 'train.lmdb'), single_image_jobs(items, 'color'), progress=False, log=lambda m: None)
    data = osp.join(root, 'train.lmdb', 'data.mdb')
    with open(data, 'r+b') as f:
        f.truncate(os.path.getsize(data) // 2)
    opt['datasets']['train'].update(dataroot_gt=osp.join(root, 'train.lmdb'), io_backend={'type': 'lmdb'})
    return 'train.lmdb is truncated: data.mdb has'


def zero_batch(root, opt):
    opt['datasets']['train']['batch_size_per_gpu'] = 0
    return 'datasets.train.batch_size_per_gpu: must be >= 1, got 0'


def lr_read_as_text(root, opt):
    opt['train']['optim_g']['lr'] = '1e-3'  # what PyYAML makes of `lr: 1e-3`
    return "train.optim_g.lr: '1e-3' is read as text, not a number (PyYAML needs a dot in a float with an exponent): write 1.0e-3"


def total_iter_not_a_number(root, opt):
    opt['train']['total_iter'] = 'abc'  # --force_yml train:total_iter=abc
    return "train.total_iter: expected a number, got 'abc'"


def total_iter_zero(root, opt):
    opt['train']['total_iter'] = 0
    return 'train.total_iter: must be >= 1, got 0'


def misspelt_path_key(root, opt):
    opt['path']['pretrain_network'] = 'x.pth'
    return 'path: unknown option "pretrain_network" (BasicSR would silently ignore it). Did you mean "pretrain_network_g"?'


def misspelt_logger_key(root, opt):
    opt['logger']['print_frq'] = 10
    return 'logger: unknown option "print_frq"'


def misspelt_top_level_key(root, opt):
    opt['manual_sed'] = 3
    return 'top level: unknown option "manual_sed"'


def misspelt_dist_params_key(root, opt):
    opt['dist_params'] = {'backend': 'gloo', 'prot': 29500}
    return 'dist_params: unknown option "prot"'


def sigma_range_reversed(root, opt):
    opt['datasets']['train']['sigma_range'] = [50, 5]
    return 'datasets.train.sigma_range: expected [low, high] with 0 <= low <= high, got [50, 5]'


def sigma_range_negative(root, opt):
    opt['datasets']['train']['sigma_range'] = [-20, 10]
    return 'datasets.train.sigma_range: expected [low, high] with 0 <= low <= high, got [-20, 10]'


def sigma_constant_negative(root, opt):
    opt['datasets']['train']['sigma_type'] = 'constant'
    opt['datasets']['train']['sigma_range'] = -5
    return 'datasets.train.sigma_range: a constant sigma must be a number >= 0, got -5'


def scheduler_gamma_negative(root, opt):
    opt['train']['scheduler']['gamma'] = -0.5
    return 'train.scheduler.gamma: must be >= 0, got -0.5'


def scheduler_milestones_not_numbers(root, opt):
    opt['train']['scheduler']['milestones'] = ['abc']
    return "train.scheduler.milestones: expected a list of whole iteration numbers >= 0, got ['abc']"


CASES = [corrupt_file, truncated_png, empty_folder, gray_for_in_ch_3, image_smaller_than_gt_size, lmdb_missing_key,
         lmdb_wrong_meta_info, missing_meta_info_file, checkpoint_wrong_width, checkpoint_missing_and_extra_keys,
         misspelt_dataset_key, misspelt_train_key, misspelt_val_key, unknown_val_dtype, misspelt_network_argument,
         truncated_lmdb, zero_batch, lr_read_as_text, total_iter_not_a_number, total_iter_zero, misspelt_path_key, misspelt_logger_key,
         misspelt_top_level_key, misspelt_dist_params_key, sigma_range_reversed, sigma_range_negative,
         sigma_constant_negative, scheduler_gamma_negative, scheduler_milestones_not_numbers]


@pytest.fixture
def setup(tmp_path):
    make_images(tmp_path / 'train', 4)
    make_images(tmp_path / 'val', 1, seed=1)
    earlier = tmp_path / 'experiments' / 'bad'  # an earlier run of the same name must survive untouched
    earlier.mkdir(parents=True)
    (earlier / 'marker.txt').write_text('earlier run')
    return tmp_path


def assert_nothing_left(root):
    assert sorted(os.listdir(osp.join(root, 'experiments'))) == ['bad'], 'earlier run archived or extra folder'
    assert os.listdir(osp.join(root, 'experiments', 'bad')) == ['marker.txt']
    assert not osp.exists(osp.join(root, 'tb_logger'))


@pytest.mark.parametrize('case', CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_clear_line_before_anything_is_written(setup, case, capsys, monkeypatch):
    from gimsanet_arch.commands.basicsr_cli import run
    root = str(setup)
    opt = base_opt(root)
    expected = case(root, opt)
    opt_path = osp.join(root, 'bad.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    code = run('train', ['-opt', opt_path, '--root', root])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith('basicsr train: error: '), err
    assert expected in lines[0]
    assert_nothing_left(root)


def _line_of(text, start):
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


@pytest.mark.parametrize('where', ['top', 'nested'])
def test_a_key_given_twice_is_one_line_naming_it_and_both_lines(setup, capsys, monkeypatch, where):
    """YAML lets the last of two equal keys win silently (``network_g`` twice: the first network
    is gone); the option file is refused, naming the key and both lines, before anything is made."""
    from gimsanet_arch.commands.basicsr_cli import run
    root = str(setup)
    text = yaml.safe_dump(base_opt(root), sort_keys=False)
    if where == 'top':
        text += 'network_g:\n  type: GIMSANet\n  num_feat: 16\n'
        key, first, second = 'network_g', _line_of(text, 'network_g:'), len(text.splitlines()) - 2
    else:
        text = text.replace('  total_iter: 2\n', '  total_iter: 2\n  total_iter: 9\n')
        key, first = 'total_iter', _line_of(text, '  total_iter: 2')
        second = first + 1
    opt_path = osp.join(root, 'twice.yml')
    with open(opt_path, 'w') as f:
        f.write(text)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    assert run('train', ['-opt', opt_path, '--root', root]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f'"{key}" is given twice (lines {first} and {second})' in lines[0] and 'twice.yml' in lines[0]
    assert_nothing_left(root)


def test_yaml_merge_keys_are_merged_and_a_bad_one_is_one_line(tmp_path):
    """``<<: *anchor`` (shared settings) is YAML's merge key: merged, the file's own keys winning,
    where BasicSR's loader said 'could not determine a constructor for the tag ...merge'."""
    from gimsanet_arch.options import OptionError, load_yaml
    path = tmp_path / 'merge.yml'
    path.write_text('common: &net {type: GIMSANet, in_channels: 3, num_feat: 4}\n'
                    'network_g:\n  <<: *net\n  num_feat: 8\n'
                    'network_d: {<<: [*net, {extra: 1}]}\n')
    opt = load_yaml(str(path))
    assert dict(opt['network_g']) == {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 8}
    assert list(opt['network_g']) == ['type', 'in_channels', 'num_feat']
    assert dict(opt['network_d']) == {'type': 'GIMSANet', 'in_channels': 3, 'num_feat': 4, 'extra': 1}
    path.write_text('network_g:\n  <<: 5\n  type: GIMSANet\n')
    with pytest.raises(OptionError) as err:
        load_yaml(str(path))
    message = str(err.value)
    assert len(message.splitlines()) == 1 and 'merge.yml (line 2' in message
    assert '"<<" (a YAML merge key) must name a mapping' in message


def test_checkpoint_mismatch_lists_the_differences(setup, capsys, monkeypatch):
    from gimsanet_arch.commands.basicsr_cli import run
    root = str(setup)
    opt = base_opt(root)
    checkpoint_wrong_width(root, opt)
    opt_path = osp.join(root, 'bad.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    assert run('train', ['-opt', opt_path, '--root', root]) == 2
    err = capsys.readouterr().err
    assert 'path.pretrain_network_g: checkpoint' in err and 'wide.pth does not match GIMSANet' in err
    assert 'network (8,' in err and 'vs file (16,' in err  # the shapes on both sides


def test_val_dtype_is_a_known_key(setup):
    from gimsanet_arch.commands.option_checks import check_option_keys, check_values
    opt = base_opt(str(setup))
    for value in ('auto', 'fp32', 'bf16'):
        opt['val']['dtype'] = value
        check_option_keys(opt)
        check_values(opt)


def test_unknown_keys_can_be_downgraded_to_warnings(setup):
    from gimsanet_arch.commands.option_checks import check_option_keys
    opt = base_opt(str(setup))
    opt['train']['ema_decy'] = 0.9
    opt['strict_options'] = False
    with pytest.warns(UserWarning, match='ema_decy'):
        check_option_keys(opt)


# ----------------------------------------------------------------------------- found at run time
def corrupt_body_png(root, opt):
    """Valid PNG signature, header and end chunk, garbage in between: passes the cheap up-front
    sniff, fails when BasicSR's loader decodes it in the first iteration."""
    path = osp.join(root, 'train', 'im1.png')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:33] + b'\x00' * (len(data) - 45) + data[-12:])
    return 'corrupt or unreadable image: ' + path


def nan_loss(root, opt):
    opt['train']['pixel_opt']['loss_weight'] = float('nan')
    opt['train']['max_nonfinite_steps'] = 2
    return 'non-finite losses in a row'


@pytest.mark.parametrize('case', [corrupt_body_png, nan_loss], ids=['corrupt_body_png', 'nan_loss'])
def test_error_at_run_time_is_one_line_and_leaves_nothing_behind(setup, case):
    root = str(setup)
    opt = base_opt(root)
    expected = case(root, opt)
    opt_path = osp.join(root, 'bad.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    result = run_basicsr_warm(['train', '-opt', opt_path, '--root', root], root)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # BasicSR logs to stderr too
    errors = [line for line in lines if line.startswith('basicsr train: error')]
    assert errors == lines[-1:], result.stderr[-3000:]
    assert expected in errors[0]
    assert_nothing_left(root)  # the half-created run is removed, the earlier one renamed back


def test_error_after_a_checkpoint_keeps_the_run(setup):
    """A run that already saved a checkpoint keeps its folder (nothing written is lost)."""
    root = str(setup)
    opt = base_opt(root)
    opt['train'].update(total_iter=4, max_nonfinite_steps=1)
    opt['logger']['save_checkpoint_freq'] = 1
    opt['val']['val_freq'] = 100
    opt_path = osp.join(root, 'bad.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    # train 2 iterations (checkpoints at 1 and 2), then resume with losses that turn NaN
    assert run_basicsr_warm(['train', '-opt', opt_path, '--root', root, '--force_yml', 'train:total_iter=2'],
                            root).returncode == 0
    opt['train']['pixel_opt']['loss_weight'] = float('nan')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    result = run_basicsr_warm(['train', '-opt', opt_path, '--root', root, '--auto_resume'], root)
    assert result.returncode == 2 and 'basicsr train: error: 1 non-finite losses in a row' in result.stderr
    models = os.listdir(osp.join(root, 'experiments', 'bad', 'models'))
    assert {'net_g_1.pth', 'net_g_2.pth'} <= set(models)


def test_auto_resume_of_a_finished_run_is_refused_not_restarted(setup):
    """A finished run keeps its final checkpoint but no training state. ``--auto_resume`` must not let
    BasicSR archive the folder and train again from iteration 0."""
    root = str(setup)
    opt = base_opt(root)
    opt['logger']['save_checkpoint_freq'] = 1
    opt['val']['val_freq'] = 100
    opt_path = osp.join(root, 'bad.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    assert run_basicsr_warm(['train', '-opt', opt_path, '--root', root], root).returncode == 0
    run = osp.join(root, 'experiments', 'bad')
    shutil.rmtree(osp.join(run, 'training_states'))  # what shipping the final weights does
    before = sorted(os.listdir(osp.join(run, 'models')))
    runs_before = sorted(os.listdir(osp.join(root, 'experiments')))  # the fixture's earlier run, archived
    result = run_basicsr_warm(['train', '-opt', opt_path, '--root', root, '--auto_resume'], root)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('basicsr train: error')]
    assert len(errors) == 1 and 'net_g_2.pth exists but no complete training state' in errors[0], errors
    assert sorted(os.listdir(osp.join(root, 'experiments'))) == runs_before, 'the finished run was archived'
    assert sorted(os.listdir(osp.join(run, 'models'))) == before


def test_dataloader_worker_errors_become_one_line():
    """DataLoader workers re-raise with the worker's traceback in the message; the CLI shows the
    original message only."""
    from gimsanet_arch.commands.option_checks import known_errors, one_line
    from gimsanet_prep.images import ImageReadError
    err = ImageReadError('Caught ImageReadError in DataLoader worker process 0.\nOriginal Traceback (most recent '
                         'call last):\n  File "x.py", line 1, in f\n    g()\ngimsanet_prep.images.'
                         'ImageReadError: corrupt or unreadable image: /data/a.png\n')
    assert isinstance(err, known_errors())
    assert one_line(err) == 'corrupt or unreadable image: /data/a.png'


def test_persistent_workers_without_workers_is_ignored_with_a_warning(setup):
    """What a CPU user sets (num_worker_per_gpu: 0) with the persistent_workers: true of many shipped files."""
    root = str(setup)
    opt = base_opt(root)
    opt['name'] = 'no_workers'
    opt['datasets']['train'].update(num_worker_per_gpu=0, persistent_workers=True)
    opt_path = osp.join(root, 'no_workers.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    result = run_basicsr_warm(['train', '-opt', opt_path], root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'persistent_workers is ignored: num_worker_per_gpu is 0' in result.stderr


def test_basicsr_test_refuses_random_weights_unless_allowed(setup, capsys, monkeypatch):
    from gimsanet_arch.commands.basicsr_cli import run
    root = str(setup)
    opt = base_opt(root)
    test_opt = {'name': 'no_weights', 'model_type': 'DenoiseModel', 'scale': 1, 'num_gpu': 0,
                'datasets': {'test_1': opt['datasets']['val']}, 'network_g': opt['network_g'],
                'path': {'pretrain_network_g': None}, 'val': {'metrics': opt['val']['metrics']}}
    opt_path = osp.join(root, 'test.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(test_opt, f)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    assert run('test', ['-opt', opt_path, '--root', root]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and 'path.pretrain_network_g is not set' in lines[0] and '--allow-random-weights' in lines[0]
    assert not osp.exists(osp.join(root, 'results'))
    assert run('test', ['-opt', opt_path, '--root', root, '--allow-random-weights']) == 0
    assert osp.isdir(osp.join(root, 'results', 'no_weights'))


SUBPROCESS_CASES = [zero_batch, lr_read_as_text, total_iter_not_a_number, total_iter_zero, misspelt_path_key,
                    truncated_lmdb]


@pytest.mark.parametrize('case', SUBPROCESS_CASES, ids=[c.__name__ for c in SUBPROCESS_CASES])
def test_the_real_command_gives_one_line_and_changes_no_file(setup, case):
    """The probes of docs/faults.md through the installed command in a subprocess: exit 2, one line
    on stderr, no traceback, every file that was there (the earlier run included) unchanged. The
    first probe starts a fresh interpreter (so nothing printed at start-up breaks the one line);
    the others fork from a warm one."""
    import hashlib
    root = str(setup)
    opt = base_opt(root)
    expected = case(root, opt)
    opt_path = osp.join(root, 'bad.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)

    def digests():
        out = {}
        for folder, _, names in os.walk(root):
            for name in names:
                with open(osp.join(folder, name), 'rb') as f:
                    out[osp.join(folder, name)] = hashlib.sha256(f.read()).hexdigest()
        return out

    before = digests()
    result = (run_basicsr if case is SUBPROCESS_CASES[0] else run_basicsr_warm)(['train', '-opt', opt_path], root)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert digests() == before
    assert_nothing_left(root)
