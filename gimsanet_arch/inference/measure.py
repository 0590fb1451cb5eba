"""Measuring a call on a device: which device, how long (median of timed runs after warm-up) and
how much memory it needs at its peak.

Timing uses ``time.perf_counter`` and waits for queued CUDA work before reading the clock. Peak
memory is what the call allocates on top of what was already allocated when it started:

- CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak statistics;
- CPU: torch has no CPU allocator statistics, but its profiler sees every allocation and free of
  torch's CPU allocator (``profile_memory=True``); the running sum of those events in time order
  gives the peak. Python objects outside torch are not counted (``tracemalloc`` would see only
  those, not tensor storage, so it is not used).

Every CUDA branch goes through :func:`synchronize` and :func:`cuda_peak_bytes`, which tests run on
CPU with stand-ins for the few ``torch.cuda`` calls.
"""
import contextlib
import os
import statistics
import sys
import time

import torch

DEVICES = ('auto', 'cpu', 'cuda')


def resolve_device(name):
    """``'auto'`` (CUDA when available, else CPU), ``'cpu'`` or ``'cuda[:N]'`` as a torch.device;
    asking for CUDA on a machine without it is an error rather than a silent fall-back."""
    if name in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {name}: no CUDA device is available here (use --device cpu or auto)')
    if device.type not in ('cpu', 'cuda'):
        raise ValueError(f'--device {name}: expected one of {", ".join(DEVICES)}')
    return device


def synchronize(device):
    """Wait for the work queued on ``device`` (CUDA kernels run asynchronously); nothing on CPU."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def median_seconds(call, device, runs=3, warmup=1):
    """Median wall time of ``runs`` calls of ``call()`` after ``warmup`` untimed ones; returns
    ``(median, times)``."""
    for _ in range(warmup):
        call()
    synchronize(device)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def cuda_peak_bytes(call, device):
    """Peak CUDA memory ``call()`` allocates above what was allocated before it."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call()
    synchronize(device)
    return max(torch.cuda.max_memory_allocated(device) - before, 0)


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ library logs every start and stop there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_from_events(events):
    """Peak of the running sum of ``(time, bytes)`` allocation (+) and free (-) events."""
    live = peak = 0
    for _, nbytes in sorted(events):
        live += nbytes
        peak = max(peak, live)
    return peak


def cpu_peak_bytes(call):
    """Peak bytes of torch's CPU allocator that ``call()`` holds at once (see the module docstring)."""
    from torch.profiler import ProfilerActivity, profile
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with quiet_stderr():
        prof.start()
    try:
        call()
    finally:
        with quiet_stderr():
            prof.stop()
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
              if e.name() == '[memory]' and e.device_type() == torch.autograd.DeviceType.CPU]
    return peak_from_events(events)


def peak_bytes(call, device):
    """``(peak bytes, how it was measured)`` of one ``call()`` on ``device``."""
    if torch.device(device).type == 'cuda':
        return cuda_peak_bytes(call, device), 'torch.cuda.max_memory_allocated'
    return cpu_peak_bytes(call), 'torch CPU allocator (profiler)'
