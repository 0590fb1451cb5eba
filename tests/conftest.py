"""Shared test helpers. Tests run on CPU with tiny images and widths unless marked ``slow``."""
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


@pytest.fixture
def basicsr_cli():
    return run_basicsr
