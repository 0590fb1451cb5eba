"""DenoiseModel behaviour: loss sums, accumulation, schedules, bf16, non-finite steps, tiled
validation (the padding/tiling engine itself: tests/inference/test_engine.py)."""
import copy
import math

import pytest
import torch

import gimsanet_arch  # noqa: F401  (first: spawned DDP workers import this module without conftest)
from basicsr.models import build_model
from gimsanet_arch.inference import engine
from gimsanet_arch.models.lr_scheduler import CosineAnnealingRestartCyclicLR


def make_model(**train_overrides):
    train = {
        'optim_g': {'type': 'Adam', 'lr': 1e-3},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
        'total_iter': 10,
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
    }
    train.update(train_overrides)
    opt = {
        'name': 'unit', 'model_type': 'DenoiseModel', 'is_train': True, 'dist': False, 'num_gpu': 0, 'rank': 0,
        'network_g': {'type': 'GIMSANet', 'in_channels': 1, 'num_feat': 4, 'msab_kernels': [2, 3]},
        'path': {'pretrain_network_g': None, 'models': '/nonexistent', 'training_states': '/nonexistent'},
        'datasets': {'train': {}}, 'train': train, 'val': {'metrics': {}},
    }
    torch.manual_seed(0)
    return build_model(opt)


def _batch(n=4, size=12):
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(n, 1, size, size, generator=g)
    return {'lq': gt + 0.1 * torch.randn(n, 1, size, size, generator=g), 'gt': gt}


def _grads(model):
    return [p.grad.clone() for p in model.net_g.parameters()]


def test_losses_are_summed_and_logged_by_name():
    model = make_model(grad_opt={'type': 'GradientLoss', 'loss_weight': 0.5})
    model.feed_data(_batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_grad'} and log['l_grad'] > 0


def test_gradient_accumulation_equals_the_full_batch_gradient():
    full, accum = make_model(), make_model(accum_steps=2)
    accum.net_g.load_state_dict(full.net_g.state_dict())
    for model in (full, accum):
        model.optimizer_g.step = lambda: None  # compare gradients, not updated weights
        model.feed_data(_batch())
        model.optimize_parameters(1)
    for a, b in zip(_grads(full), _grads(accum)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert full.get_current_log()['l_pix'] == pytest.approx(accum.get_current_log()['l_pix'], rel=1e-5)


def test_grad_clip_and_optimizer_by_torch_name():
    model = make_model(use_grad_clip=True, optim_g={'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 1e-4})
    assert isinstance(model.optimizer_g, torch.optim.AdamW) and model.grad_clip_norm == 0.01
    model.optimizer_g.step = lambda: None
    model.feed_data(_batch())
    model.optimize_parameters(1)
    norm = torch.norm(torch.stack([g.norm() for g in _grads(model)]))
    assert norm <= 0.01 + 1e-6
    with pytest.raises(ValueError, match='unknown optimizer "Adamm"'):
        make_model(optim_g={'type': 'Adamm', 'lr': 1e-3})


def test_bf16_autocast_trains_with_fp32_weights():
    model = make_model(bf16=True)
    model.feed_data(_batch())
    model.optimize_parameters(1)
    assert model.use_bf16 and all(p.dtype == torch.float32 for p in model.net_g.parameters())
    assert math.isfinite(model.get_current_log()['l_pix'])


def test_channels_last_training_takes_the_same_steps_in_the_other_layout():
    """Same seed, same batches: fp32 steps in channels_last end where the NCHW steps end (the
    layout changes the kernels' summation order only); the network and its EMA copy train in
    channels_last, and a checkpoint moves between the layouts unchanged."""
    plain, fast = make_model(ema_decay=0.9), make_model(ema_decay=0.9, channels_last=True)
    fast.net_g.load_state_dict(plain.net_g.state_dict())
    fast.net_g_ema.load_state_dict(plain.net_g_ema.state_dict())
    for model in (plain, fast):
        for it in (1, 2):
            model.feed_data(_batch())
            model.optimize_parameters(it)
    assert not plain.channels_last and fast.channels_last
    four_d = [p for p in fast.net_g.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2:] != (1, 1)]
    assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                          for p in four_d)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.net_g_ema.parameters() if p.dim() == 4)
    for net in ('net_g', 'net_g_ema'):
        for (name, a), b in zip(getattr(plain, net).state_dict().items(), getattr(fast, net).state_dict().values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=f'{net}.{name}')
    nchw = make_model()
    nchw.net_g.load_state_dict(fast.net_g.state_dict())  # what a resume in the other layout does
    x = _batch()['lq']
    with torch.no_grad():
        torch.testing.assert_close(nchw.net_g(x), fast.net_g(x), rtol=1e-4, atol=1e-5)


def test_channels_last_auto_and_refusals(monkeypatch):
    monkeypatch.setattr(engine, 'bf16_supported', lambda device: False)
    assert make_model(bf16='auto', channels_last='auto').channels_last  # fp32 on a CPU: on
    monkeypatch.setattr(engine, 'bf16_supported', lambda device: True)
    assert not make_model(bf16='auto', channels_last='auto').channels_last  # bf16: off (the PyTorch bug)
    with pytest.raises(ValueError, match='train.channels_last: true with train.bf16'):
        make_model(bf16=True, channels_last=True)
    with pytest.raises(ValueError, match="train.channels_last: expected true, false or auto, got 'yes'"):
        make_model(channels_last='yes')


def test_non_finite_loss_skips_then_stops():
    model = make_model(max_nonfinite_steps=2)
    before = copy.deepcopy(model.net_g.state_dict())
    bad = _batch()
    bad['gt'][0, 0, 0, 0] = float('nan')
    model.feed_data(bad)
    model.optimize_parameters(1)  # skipped with a warning
    for k, v in model.net_g.state_dict().items():
        assert torch.equal(v, before[k])
    model.feed_data(_batch())
    model.optimize_parameters(2)  # a finite step resets the count
    model.feed_data(bad)
    model.optimize_parameters(3)
    model.feed_data(bad)
    with pytest.raises(FloatingPointError, match='2 non-finite losses in a row'):
        model.optimize_parameters(4)


def test_restormer_cyclic_schedule():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=3e-4)
    sched = CosineAnnealingRestartCyclicLR(optimizer, periods=[10, 20], restart_weights=[1, 1], eta_mins=[3e-4, 1e-6])
    lrs = []
    for _ in range(30):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        sched.step()
    assert all(lr == pytest.approx(3e-4) for lr in lrs[:11])  # flat for the first period
    assert lrs[20] == pytest.approx(1e-6 + 0.5 * (3e-4 - 1e-6))  # half-way down the cosine
    assert lrs[-1] < lrs[20] and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_nafnet_true_cosine_schedule_from_options():
    model = make_model(scheduler={'type': 'TrueCosineAnnealingLR', 'T_max': 4, 'eta_min': 1e-7})
    lrs = []
    for it in range(1, 6):
        model.update_learning_rate(it)
        lrs.append(model.get_current_learning_rate()[0])
    assert lrs[0] == pytest.approx(1e-3) and lrs[4] == pytest.approx(1e-7)


@pytest.mark.parametrize('val_opt,multiple', [({}, 8), ({'window_size': 16}, 16), ({'pad_multiple': 24}, 24)])
def test_validation_pads_to_the_arch_multiple_unless_the_option_says(val_opt, multiple):
    """Restormer needs a multiple of 8 (its ``pad_multiple``): validation pads odd images to it even
    without ``val.window_size``; an explicit option still wins."""
    from gimsanet_arch.archs.restormer_arch import Restormer
    model = make_model()
    model.net_g = Restormer(**Restormer.tiny_config)
    model.opt['val'] = dict(val_opt, metrics={})
    assert model._pad_multiple() == multiple
    model.feed_data({'lq': torch.rand(1, 3, 19, 23)})
    model.test()
    assert model.output.shape == (1, 3, 19, 23)


def test_tiled_validation_is_close_to_full_for_a_real_network():
    model = make_model()
    net = model.net_g.eval()
    img = torch.rand(1, 1, 40, 36)
    with torch.no_grad():
        full = net(img)
    tiled = engine.run(net, img, tile=24, overlap=12)
    assert tiled.shape == full.shape
    assert (tiled - full).abs().mean() < 0.1 * (full - img).abs().mean() + 1e-3


@pytest.mark.parametrize('dtype', [None, 'auto', 'fp32', 'bf16'])
def test_validation_runs_the_engine_fast_path_in_val_dtype(dtype):
    """``val.dtype`` (default auto) picks the engine's dtype; the input goes channels_last; the
    trained network keeps its mode and layout."""
    model = make_model()
    model.opt['val'] = {'metrics': {}} if dtype is None else {'metrics': {}, 'dtype': dtype}
    lq = torch.rand(1, 1, 17, 15)
    model.feed_data({'lq': lq})
    model.test()
    assert model.net_g.training and model.net_g.head_conv.weight.is_contiguous()
    assert torch.equal(model.output, engine.run(model.net_g, lq, dtype=dtype or 'auto'))
    with torch.no_grad():
        plain = model.net_g(lq)
    if engine.resolve_dtype(dtype, 'cpu') == torch.float32:
        assert (model.output - plain).abs().max() <= 1e-5
    else:
        assert not torch.equal(model.output, engine.run(model.net_g, lq, dtype='fp32'))
        assert (model.output - plain).abs().max() < 0.05 * plain.abs().max()


def _nonfinite_rank_worker(rank, port, results):
    import os
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.distributed.init_process_group('gloo', rank=rank, world_size=2)
    try:
        model = make_model()
        model.opt['dist'], model.opt['world_size'] = True, 2
        model.net_g = torch.nn.parallel.DistributedDataParallel(model.get_bare_model(model.net_g))
        model.optimizer_g.param_groups[0]['params'] = list(model.net_g.parameters())
        batch = _batch()
        if rank == 1:
            batch['gt'][0, 0, 0, 0] = float('nan')  # only this rank sees a bad loss
        model.feed_data(batch)
        model.optimize_parameters(1)
        model.feed_data(_batch())
        model.optimize_parameters(2)  # both ranks must still be in step here
        results[rank] = (model.nonfinite_in_a_row, model.get_current_log()['l_pix'])
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_ranks_skip_a_non_finite_step_together():
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    results = manager.dict()
    ctx = mp.start_processes(_nonfinite_rank_worker, args=(port, results), nprocs=2, join=False,
                             start_method='spawn')  # fork after OpenMP init can deadlock
    for proc in ctx.processes:
        proc.join(60)
    assert all(p.exitcode == 0 for p in ctx.processes), [p.exitcode for p in ctx.processes]
    assert results[0][0] == results[1][0] == 0  # both skipped step 1, both stepped at 2
