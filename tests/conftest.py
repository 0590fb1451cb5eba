"""Shared test helpers. Tests run on CPU with tiny images and widths unless marked ``slow``."""
import logging
import os
import subprocess
import sys

import pytest

import gimsanet_arch  # noqa: F401  (shims + registries, before anything touches basicsr)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_basicsr(args, cwd, timeout=600, env=None):
    """Run ``basicsr <args>`` in a subprocess (the installed console command's code path)."""
    full_env = dict(os.environ, OMP_NUM_THREADS='2', PYTHONWARNINGS='ignore')
    full_env.update(env or {})
    cmd = [sys.executable, '-m', 'gimsanet_arch.commands.basicsr_cli'] + list(args)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def run_basicsr_warm(args, cwd, timeout=600, env=None):
    """:func:`run_basicsr`, the same command line and environment, in a process forked from a warm
    interpreter (tests/warm_python.py) instead of a fresh one: no start-up import of torch. Not for
    tests of start-up itself (output at import, import errors), of a process killed or timed from
    outside, or of what a process imports."""
    import warm_python
    return warm_python.run(['-m', 'gimsanet_arch.commands.basicsr_cli'] + list(args), cwd, timeout=timeout, env=env)


@pytest.fixture(autouse=True)
def no_leftover_basicsr_log_handlers():
    """Remove the handlers a test's in-process run added to BasicSR's ``basicsr`` logger: its stream
    handler holds the stderr pytest captured for that test, which is closed afterwards, and a later
    test's log line would print a 'Logging error' traceback instead of one error line."""
    logger = logging.getLogger('basicsr')
    before = list(logger.handlers)
    yield
    for handler in [h for h in logger.handlers if h not in before]:
        logger.removeHandler(handler)
        if isinstance(handler, logging.FileHandler):
            handler.close()


@pytest.fixture(scope='module')
def one_torch_thread():
    """One torch thread for a module of tiny in-process forwards (``pytestmark =
    pytest.mark.usefixtures('one_torch_thread')``): on a shared CPU, two threads waiting on each other
    make 8x8 forwards many times slower. The count is restored afterwards, also after the
    ``--threads`` values a test passes to a command."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def basicsr_cli():
    return run_basicsr
