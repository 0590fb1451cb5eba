"""tests/warm_python.py runs a command as a fresh ``python`` would: the same stdout, stderr, exit
code, ``sys.argv``, ``sys.path[0]``, ``__name__``, working directory and environment (the scripts
here import nothing heavy, so the fresh runs they are compared with are cheap)."""
import subprocess
import sys
import textwrap

import pytest

import warm_python

SCRIPT = textwrap.dedent('''\
    import os, sys
    print('argv', sys.argv[1:], 'name', __name__, 'cwd', os.getcwd(), 'path0', sys.path[0])
    print('env', os.environ.get('WARM_PYTHON_PROBE'), 'stdin', repr(sys.stdin.read()))
    print('to stderr', file=sys.stderr)
    {ending}
''')
ENDINGS = {'exit 0': 'pass', 'exit 3': 'sys.exit(3)', 'exit message': "sys.exit('stopped: bad input')",
           'exception': "raise ValueError('boom')", 'atexit': "import atexit; atexit.register(print, 'at exit')"}


def _fresh(argv, cwd, env):
    import os
    return subprocess.run([sys.executable] + argv, cwd=cwd, env=dict(os.environ, **env), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def _last_lines(text):
    """A traceback's last line (the error itself): the frames above it differ (the server's own)."""
    return text.strip().splitlines()[-1:] if 'Traceback' in text else text


@pytest.mark.parametrize('ending', ENDINGS)
def test_a_script_runs_as_in_a_fresh_interpreter(tmp_path, ending):
    script = tmp_path / 'probe.py'
    script.write_text(SCRIPT.format(ending=ENDINGS[ending]))
    argv, env = [str(script), 'a', 'b c'], {'WARM_PYTHON_PROBE': 'x'}
    fresh, warm = _fresh(argv, tmp_path, env), warm_python.run(argv, tmp_path, env=env, defaults={})
    assert (warm.returncode, warm.stdout) == (fresh.returncode, fresh.stdout)
    assert _last_lines(warm.stderr) == _last_lines(fresh.stderr)
    assert ('Traceback' in warm.stderr) == ('Traceback' in fresh.stderr)


def test_a_module_and_code_run_as_in_a_fresh_interpreter(tmp_path):
    (tmp_path / 'probe_module.py').write_text(SCRIPT.format(ending='sys.exit(4)'))
    for argv in (['-m', 'probe_module', '--flag'], ['-c', SCRIPT.format(ending='pass'), 'x']):
        fresh, warm = _fresh(argv, tmp_path, {}), warm_python.run(argv, tmp_path, defaults={})
        assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_many_side_by_side_in_order_and_a_timeout(tmp_path):
    commands = [{'argv': ['-c', f'import sys, time; time.sleep(0.2); print({i}); sys.exit({i})'], 'cwd': tmp_path}
                for i in range(4)]
    results = warm_python.run_many(commands, parallel=2)
    assert [(r.returncode, r.stdout) for r in results] == [(i, f'{i}\n') for i in range(4)]
    with pytest.raises(subprocess.TimeoutExpired):
        warm_python.run(['-c', 'import time; time.sleep(60)'], tmp_path, timeout=1)
    assert warm_python.run(['-c', 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'],
                           tmp_path).returncode == -9


def test_the_preloaded_modules_are_there_and_the_default_environment_applies(tmp_path):
    code = ('import os, sys, torch; print("gimsanet_arch.commands.basicsr_cli" in sys.modules, '
            'os.environ["OMP_NUM_THREADS"], os.environ["PYTHONWARNINGS"], torch.get_num_threads())')
    assert warm_python.run(['-c', code], tmp_path).stdout.split() == ['True', '2', 'ignore', '2']
    one = warm_python.run(['-c', code], tmp_path, env={'OMP_NUM_THREADS': '1'})  # applied in the child
    assert one.stdout.split() == ['True', '1', 'ignore', '1']
