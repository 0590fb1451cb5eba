"""Real 2-process distributed training on CPU (gloo) through ``torchrun``.

The first test runs this very file under ``torchrun``: each rank runs the plugin's ``train``
command (``gimsanet_arch.commands.basicsr_cli.run``, what ``python -m gimsanet_arch.train`` runs), then dumps the
weights it holds, so the test can check that both ranks end identical, that only rank 0 wrote
checkpoints and logs, and that rank 0's validation under DDP (GIMSANet holds fixed-kernel buffers)
neither hangs nor differs from a single-process evaluation of the saved weights.
The second runs the ``basicsr`` console command under the legacy ``torch.distributed.launch``,
which passes ``--local-rank=N`` on the command line. Both are marked ``torchrun``: the default run
leaves them out, ``python -m pytest -m torchrun`` runs them (docs/testing.md).
"""
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_OPT = osp.join(REPO_ROOT, 'tests', 'options', 'train_GIMSANet_tiny.yml')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def make_images(folder, n, size=48, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        img = cv2.GaussianBlur((rng.rand(size, size, 3) * 255).astype(np.uint8), (5, 5), 2)
        cv2.imwrite(osp.join(folder, f'im{i}.png'), img)


def write_opt(root, name):
    with open(TINY_OPT) as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    opt['train']['total_iter'] = 4
    opt['logger'].update(save_checkpoint_freq=2, print_freq=1)
    opt['val'].update(val_freq=2, save_img=True)
    opt.pop('dist_params', None)  # the backend must follow the device: gloo on this CPU run
    path = osp.join(root, f'{name}.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


def launch(launcher_args, cmd, cwd, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    full = [sys.executable, '-m', *launcher_args, '--nproc_per_node=2', '--master_addr=127.0.0.1',
            f'--master_port={free_port()}', *cmd]
    return subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def data_root(tmp_path):
    make_images(tmp_path / 'datasets' / 'tiny' / 'train', 4)
    make_images(tmp_path / 'datasets' / 'tiny' / 'val', 1, seed=1)
    return tmp_path


def _last_val_psnr(text):
    values = re.findall(r'# psnr: ([0-9.]+)', text)
    assert values, text[-3000:]
    return float(values[-1])


def _single_process_psnr(root, params_ema):
    """What a single-process evaluation of the saved EMA weights gives on the val set, through the
    inference engine's default path (the one DenoiseModel validation uses)."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from gimsanet_arch.archs.gimsanet_arch import GIMSANet
    from gimsanet_arch.data.gaussian_noise_dataset import GaussianNoiseDataset
    from gimsanet_arch.inference import engine
    net = GIMSANet(in_channels=3, num_feat=8)
    net.load_state_dict(params_ema)
    net.eval()
    data = GaussianNoiseDataset({'name': 'v', 'phase': 'val', 'dataroot_gt': osp.join(root, 'datasets/tiny/val'),
                                 'io_backend': {'type': 'disk'}, 'in_ch': 3, 'sigma_test': 25})[0]
    lq = data['lq'][None]
    with torch.no_grad():
        out = engine.run(net, lq)
    return calculate_psnr(tensor2img([out]), tensor2img([data['gt'][None]]), crop_border=0)


@pytest.mark.torchrun
def test_torchrun_two_ranks_gloo_identical_weights_one_set_of_checkpoints(data_root):
    root = str(data_root)
    opt = write_opt(root, 'ddp')
    dump, logs = osp.join(root, 'dump'), osp.join(root, 'rank_logs')
    result = launch(['torch.distributed.run', f'--log-dir={logs}', '--redirects=3'],
                    [__file__, '--dump', dump, '-opt', opt, '--launcher', 'pytorch', '--root', root], root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    rank0, rank1 = (torch.load(osp.join(dump, f'rank{r}.pth'), weights_only=False) for r in (0, 1))
    assert (rank0['rank'], rank0['world_size'], rank0['backend']) == (0, 2, 'gloo')
    assert (rank1['rank'], rank1['world_size'], rank1['backend']) == (1, 2, 'gloo')
    assert rank0['ddp'] and rank1['ddp'] and not rank0['broadcast_buffers']
    for key in ('params', 'params_ema'):
        assert rank0[key].keys() == rank1[key].keys()
        for name in rank0[key]:
            assert torch.equal(rank0[key][name], rank1[key][name]), f'{key}.{name} differs between ranks'
    assert any(not torch.equal(rank0['params'][k], rank0['init'][k]) for k in rank0['params']), 'no training?'

    exp = osp.join(root, 'experiments', 'ddp')
    assert sorted(os.listdir(osp.join(exp, 'models'))) == ['net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
    assert sorted(os.listdir(osp.join(exp, 'training_states'))) == ['2.state', '4.state']
    assert sorted(os.listdir(osp.join(root, 'experiments'))) == ['ddp']
    assert len([n for n in os.listdir(exp) if n.endswith('.log')]) == 1
    saved = torch.load(osp.join(exp, 'models', 'net_g_latest.pth'), weights_only=True)
    for key in ('params', 'params_ema'):
        for name in saved[key]:
            assert torch.equal(saved[key][name], rank0[key][name])
    state = torch.load(osp.join(exp, 'training_states', '4.state'), weights_only=False)
    assert len(state['gimsanet_resume']['rng_states']) == 2  # both ranks' RNG, for exact resume

    # only rank 0 logs: per-rank stdout/stderr files written by torchrun
    outs = {}
    for rank in (0, 1):
        found = [osp.join(d, f) for d, _, files in os.walk(logs) for f in files
                 if f in ('stdout.log', 'stderr.log') and osp.basename(d) == str(rank)]
        outs[rank] = ''.join(open(p).read() for p in found)
    assert 'INFO: Saving models and training states.' in outs[0]
    assert 'INFO:' not in outs[1], outs[1][-2000:]

    # validation ran on rank 0 mid-run (iter 2, while rank 1 went on training) and at the end,
    # and gives what a single process gives for the same weights
    assert outs[0].count('Validation TinyVal\n') == 3
    assert _last_val_psnr(outs[0]) == pytest.approx(_single_process_psnr(root, saved['params_ema']), abs=1e-4)


@pytest.mark.torchrun
def test_basicsr_command_under_legacy_launcher_with_local_rank_argument(data_root):
    """``torch.distributed.launch`` passes ``--local-rank=N`` (before all other arguments);
    the ``basicsr`` command (its module, ``gimsanet_arch.commands.basicsr_cli``) accepts it."""
    root = str(data_root)
    opt = write_opt(root, 'legacy')
    result = launch(['torch.distributed.launch'],
                    ['-m', 'gimsanet_arch.commands.basicsr_cli', 'train', '-opt', opt, '--launcher', 'pytorch'], root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    exp = osp.join(root, 'experiments', 'legacy')
    assert sorted(os.listdir(osp.join(exp, 'models'))) == ['net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
    assert sorted(os.listdir(osp.join(root, 'experiments'))) == ['legacy']
    with open(osp.join(exp, 'legacy.yml')) as f:  # BasicSR writes the command line, as given, on top of the copy
        assert '--local-rank=0 train -opt' in f.read(400)


def test_backend_follows_device_unless_configured(monkeypatch):
    from gimsanet_arch.training.dist import choose_backend
    assert choose_backend(num_gpu=0) == 'gloo'
    assert choose_backend(num_gpu=0, backend='mpi') == 'mpi'
    with pytest.warns(UserWarning, match='using gloo'):  # BasicSR-era files say nccl; a CPU run cannot use it
        assert choose_backend(num_gpu=2, backend='nccl') == 'gloo'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert choose_backend(num_gpu=2) == 'nccl'
    assert choose_backend(num_gpu='auto') == 'nccl'
    assert choose_backend(num_gpu=0) == 'gloo'
    assert choose_backend(num_gpu=1, backend='gloo') == 'gloo'
    assert choose_backend(num_gpu=1, backend='nccl') == 'nccl'


def test_force_yml_reaches_the_backend_choice(tmp_path):
    from gimsanet_arch.options import dist_params, read_options
    opt = tmp_path / 'o.yml'
    opt.write_text('num_gpu: 1\ndist_params: {backend: nccl, port: 29500}\ntrain: {total_iter: 9}\n')
    assert dist_params(read_options(['-opt', str(opt)])[0]) == {'backend': 'nccl', 'port': 29500, 'num_gpu': 1}
    forced = dist_params(read_options(['-opt', str(opt), '--force_yml', 'num_gpu=0', 'dist_params:backend=gloo',
                                       'train:total_iter=3', '--auto_resume'])[0])
    assert forced == {'backend': 'gloo', 'port': 29500, 'num_gpu': 0}


def test_local_rank_spellings_are_accepted():
    from gimsanet_arch.options import normalize_local_rank_argv
    assert normalize_local_rank_argv(['-opt', 'x', '--local-rank=1']) == ['-opt', 'x', '--local_rank=1']
    assert normalize_local_rank_argv(['--local-rank', '0']) == ['--local_rank', '0']


# ----------------------------------------------------------------------------- run under torchrun
def _rank_main(argv):
    """Entry point of each rank (``torchrun tests/test_distributed.py --dump DIR <train args>``)."""
    import torch.distributed as dist

    import gimsanet_arch  # noqa: F401  (shims first: plain `import basicsr` fails on this stack)
    import basicsr.train as basicsr_train
    from gimsanet_arch.commands.basicsr_cli import run

    dump = argv[argv.index('--dump') + 1]
    del argv[argv.index('--dump'):argv.index('--dump') + 2]
    models = []
    original_build_model = basicsr_train.build_model

    def build_model(opt):
        model = original_build_model(opt)
        models.append((model, {k: v.clone() for k, v in model.get_bare_model(model.net_g).state_dict().items()}))
        return model

    basicsr_train.build_model = build_model
    code = run('train', argv, prog='test_distributed')
    model, init = models[0]
    os.makedirs(dump, exist_ok=True)
    torch.save({
        'rank': dist.get_rank(),
        'world_size': dist.get_world_size(),
        'backend': dist.get_backend(),
        'ddp': isinstance(model.net_g, torch.nn.parallel.DistributedDataParallel),
        'broadcast_buffers': getattr(model.net_g, 'broadcast_buffers', None),
        'init': init,
        'params': model.get_bare_model(model.net_g).state_dict(),
        'params_ema': model.net_g_ema.state_dict(),
    }, osp.join(dump, f'rank{dist.get_rank()}.pth'))
    dist.barrier()
    dist.destroy_process_group()
    return code


if __name__ == '__main__':
    sys.exit(_rank_main(sys.argv[1:]))
