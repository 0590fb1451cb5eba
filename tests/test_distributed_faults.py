"""What a multi-node run meets (issue 14), on this machine with gloo: two torchrun "nodes" joined by
c10d rendezvous, an elastic restart after a SIGKILLed worker, and an error on rank 1 only.

Every run trains the tiny GIMSANet (num_feat 8) on 32 px images for 6 iterations, 2 ranks; the
two-node and the restarted run must end with the weights of one uninterrupted single-node run.
The torchrun helpers come from tests/test_distributed.py. The scenarios are marked ``torchrun``:
the default run leaves them out, ``python -m pytest -m torchrun`` runs them (docs/testing.md).
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from test_crash_resume import assert_same_tensors, load
from test_distributed import REPO_ROOT, free_port, launch, make_images, write_opt

DIST_TRAIN = osp.join(REPO_ROOT, 'scripts', 'dist_train.sh')
SIX_ITERS = ['--force_yml', 'train:total_iter=6', 'val:save_img=false']


def dist_train(root, nproc, opt, env=None):
    """``scripts/dist_train.sh NPROC OPT`` started in ``root`` (not waited for)."""
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONWARNINGS='ignore', **(env or {}))
    return subprocess.Popen(['bash', DIST_TRAIN, str(nproc), opt, '--root', root, *SIX_ITERS], cwd=root,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-6000:]
    return out


def assert_same_weights(root, run_a, run_b):
    for name in ('net_g_4.pth', 'net_g_latest.pth'):
        a, b = (load(osp.join(root, 'experiments', run, 'models', name)) for run in (run_a, run_b))
        for key in ('params', 'params_ema'):
            assert_same_tensors(a[key], b[key], f'{run_b} vs {run_a}: {name} {key}')


@pytest.fixture(scope='module')
def single_node(tmp_path_factory):
    """The reference: one node, 2 processes, uninterrupted (``scripts/dist_train.sh 2 OPT``)."""
    root = tmp_path_factory.mktemp('faults')
    make_images(root / 'datasets' / 'tiny' / 'train', 4, size=32)
    make_images(root / 'datasets' / 'tiny' / 'val', 1, size=32, seed=1)
    root = str(root)
    finished(dist_train(root, 2, write_opt(root, 'single')))
    return root


@pytest.mark.torchrun
def test_two_nodes_c10d_rendezvous_equal_a_single_node_run(single_node):
    """The multi-node command of docs/distributed_and_resume.md: the same ``dist_train.sh`` on each
    node with NNODES=2 and one rendezvous endpoint; one process per node here."""
    root = single_node
    opt = write_opt(root, 'two_nodes')
    env = {'NNODES': '2', 'RDZV_ENDPOINT': f'127.0.0.1:{free_port()}', 'RDZV_ID': 'faults', 'LOCAL_ADDR': '127.0.0.1'}
    nodes = [dist_train(root, 1, opt, env) for _ in range(2)]
    for node in nodes:
        finished(node)
    assert _logged_world_size(root) == 2
    assert_same_weights(root, 'single', 'two_nodes')
    assert sorted(os.listdir(osp.join(root, 'experiments', 'two_nodes', 'training_states'))) == [
        '2.state', '4.state', '6.state']


def _logged_world_size(root):
    """``world_size`` as BasicSR's log of the two-node run records it."""
    exp = osp.join(root, 'experiments', 'two_nodes')
    log = next(osp.join(exp, n) for n in os.listdir(exp) if n.endswith('.log'))
    for line in open(log):
        if line.strip().startswith('world_size:'):
            return int(line.split(':')[1])
    return None


@pytest.mark.torchrun
def test_elastic_restart_after_sigkill_resumes_by_itself(single_node):
    """``torchrun --max-restarts 1``; rank 1 is SIGKILLed at iteration 5 (after the iteration-4 state
    is saved). torchrun restarts both workers with the first command line (no --auto_resume); they
    continue from iteration 4 and end with the uninterrupted run's weights."""
    root = single_node
    opt = write_opt(root, 'elastic')
    result = launch(['torch.distributed.run', '--max-restarts=1'],
                    [osp.join(REPO_ROOT, 'tests', 'sigkill_rank_cli.py'), '1', '5', '-opt', opt, '--launcher',
                     'pytorch', '--root', root, *SIX_ITERS], root)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert 'Restarted by the launcher (restart 1): continuing from the newest complete training state' in out
    assert 'Resuming training from epoch: 1, iter: 4' in out
    assert not [n for n in os.listdir(osp.join(root, 'experiments')) if n.startswith('elastic_archived')]
    assert_same_weights(root, 'single', 'elastic')


def _rank_outputs(logs):
    outs = {}
    for rank in (0, 1):
        found = [osp.join(d, f) for d, _, files in os.walk(logs) for f in files
                 if f in ('stdout.log', 'stderr.log') and osp.basename(d) == str(rank)]
        outs[rank] = ''.join(open(p).read() for p in found)
    return outs


def _corrupt_png_body(path):
    """Keep the PNG signature and IEND (the up-front checks pass) but garble the pixel data."""
    data = bytearray(open(path, 'rb').read())
    start = data.find(b'IDAT') + 4 + 40
    for i in range(start, start + 40):
        data[i] ^= 0x5A
    with open(path, 'wb') as f:
        f.write(data)


@pytest.mark.torchrun
def test_error_on_rank1_only_stops_every_rank_with_one_line_and_no_run_folder(tmp_path):
    """A corrupt image that only rank 1's shard holds: rank 1 fails in its first batches while rank 0
    waits in DDP's all-reduce. Both ranks print the same one line and exit; rank 0 removes the run
    folder it had created. (The 300 s limit would catch a hang until the 30 min collective timeout.)"""
    root = str(tmp_path)
    make_images(tmp_path / 'datasets' / 'tiny' / 'train', 4, size=32)
    make_images(tmp_path / 'datasets' / 'tiny' / 'val', 1, size=32, seed=1)
    # one pass over the 4 images per epoch, 1 per batch: epoch 0 gives rank r the images perm[r::2]
    order = torch.randperm(4, generator=torch.Generator().manual_seed(0)).tolist()
    bad = next(i for i in order[1::2] if i != 0)  # image 0 is decoded up front by every rank
    bad_path = f'datasets/tiny/train/im{bad}.png'  # as the option file names the folder
    _corrupt_png_body(osp.join(root, bad_path))
    opt = write_opt(root, 'rank_error')
    logs = osp.join(root, 'rank_logs')
    result = launch(['torch.distributed.run', f'--log-dir={logs}', '--redirects=3'],
                    ['-m', 'gimsanet_arch.commands.basicsr_cli', 'train', '-opt', opt, '--launcher', 'pytorch',
                     '--force_yml', 'datasets:train:dataset_enlarge_ratio=1', 'datasets:train:batch_size_per_gpu=1'],
                    root, timeout=300)
    assert result.returncode != 0
    outs = _rank_outputs(logs)
    lines = {rank: [line for line in out.splitlines() if line.startswith('basicsr train: error')]
             for rank, out in outs.items()}
    assert lines[1] and lines[1] == lines[0], lines
    assert lines[0][0].startswith('basicsr train: error [rank 1]: ') and bad_path in lines[0][0]
    assert 'Traceback' not in outs[0] + outs[1], outs
    assert 'INFO: Start training' in outs[0]  # rank 0 had created the run folder and started
    assert not osp.exists(osp.join(root, 'experiments', 'rank_error'))
    assert not [n for n in os.listdir(osp.join(root, 'experiments')) if n.startswith('rank_error')]


def test_launcher_restart_turns_auto_resume_on(monkeypatch, capsys):
    from gimsanet_arch.training.resume import resume_after_launcher_restart
    argv = ['-opt', 'x.yml', '--launcher', 'pytorch']
    monkeypatch.delenv('TORCHELASTIC_RESTART_COUNT', raising=False)
    assert resume_after_launcher_restart(argv) == argv  # a first start stays a fresh start
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', '0')
    assert resume_after_launcher_restart(argv) == argv
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', '2')
    monkeypatch.setenv('RANK', '0')
    assert resume_after_launcher_restart(argv) == argv + ['--auto_resume']
    assert 'Restarted by the launcher (restart 2)' in capsys.readouterr().out
    assert resume_after_launcher_restart(argv + ['--auto_resume']) == argv + ['--auto_resume']
