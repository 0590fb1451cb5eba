"""Exact resume with DataLoader workers (issue 14): every training sample is seeded from
(manual_seed, rank, epoch, position in the epoch), so a run stopped mid-epoch and resumed with
``num_worker_per_gpu: 2`` ends with the weights of an uninterrupted run, random crops, flips,
rotations and noise levels included (compat row ``worker_seeds``)."""
import os.path as osp
import pickle

import warm_python
from test_crash_resume import assert_same_tensors, load, make_images, write_opt


def _train(opt_path, root, *extra):
    """``basicsr train`` (a process forked from the warm interpreter, one thread, as test_crash_resume's runs)."""
    return {'argv': ['-m', 'gimsanet_arch.commands.basicsr_cli', 'train', '-opt', opt_path, '--root', root, *extra],
            'cwd': root, 'env': {'OMP_NUM_THREADS': '1'}, 'timeout': 300}


def _finished(result):
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    return out


def test_resume_with_dataloader_workers_equals_uninterrupted(tmp_path):
    """4 batches per epoch; the first run stops after iteration 6 (its last state, mid-epoch 1:
    2 batches of that epoch done), the resumed run trains 7..10 with fresh workers."""
    root = str(tmp_path)
    make_images(tmp_path / 'datasets' / 'tiny' / 'train', 4, size=32)
    make_images(tmp_path / 'datasets' / 'tiny' / 'val', 1, size=32, seed=1)
    workers = ['--force_yml', 'datasets:train:num_worker_per_gpu=2']
    ref_opt, run_opt = write_opt(root, 'ref'), write_opt(root, 'resumed')
    # the uninterrupted reference and the first chunk side by side, then the resumed chunk
    for result in warm_python.run_many([_train(ref_opt, root, *workers),
                                        _train(run_opt, root, *workers, 'train:total_iter=6')], parallel=2):
        _finished(result)
    out = _finished(warm_python.run(**_train(run_opt, root, *workers, '--auto_resume')))
    assert 'Resuming training from epoch: 1, iter: 6' in out
    assert 'skipping 2 already-trained batch(es); RNG states restored' in out

    ref_exp, exp = osp.join(root, 'experiments', 'ref'), osp.join(root, 'experiments', 'resumed')
    for name in ('net_g_8.pth', 'net_g_10.pth'):
        a, b = load(osp.join(ref_exp, 'models', name)), load(osp.join(exp, 'models', name))
        assert_same_tensors(a['params'], b['params'], f'{name} params')
        assert_same_tensors(a['params_ema'], b['params_ema'], f'{name} params_ema')
    a, b = load(osp.join(ref_exp, 'training_states', '10.state')), load(osp.join(exp, 'training_states', '10.state'))
    for sa, sb in zip(a['optimizers'][0]['state'].values(), b['optimizers'][0]['state'].values()):
        assert_same_tensors(sa, sb, 'optimizer state')


def test_sample_seeds_follow_position_not_worker():
    from gimsanet_arch.training.worker_seeds import PositionedIndex, positioned, sample_seed
    tagged = positioned([7, 3, 7, 1], epoch=2, start=1)
    assert [int(i) for i in tagged] == [3, 7, 1] and [i.position for i in tagged] == [1, 2, 3]
    back = pickle.loads(pickle.dumps(tagged[1]))  # how indices reach the workers
    assert isinstance(back, PositionedIndex) and (int(back), back.epoch, back.position) == (7, 2, 2)
    seeds = {sample_seed(10, rank, epoch, position) for rank in (0, 1) for epoch in (0, 1) for position in (0, 1)}
    assert len(seeds) == 8  # every (rank, epoch, position) draws its own numbers
    assert sample_seed(10, 1, 0, 5) == sample_seed(10, 1, 0, 5)
