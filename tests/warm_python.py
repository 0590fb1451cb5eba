"""A warm Python for the tests: ``python -m MODULE ARGS``, ``python -c CODE ARGS`` or ``python SCRIPT
ARGS`` in a child process forked from a server that has already imported torch, BasicSR and the
plugin.

Starting a fresh interpreter costs a few CPU seconds, almost all of it importing torch and
torchvision; a test that runs the ``basicsr`` command ten times pays that ten times. Here one
server process imports once and forks a child per command. The child is a separate process
like ``subprocess.run``'s: its own working directory, environment, ``sys.argv``, stdin from
``/dev/null``, stdout and stderr captured, the module or script run as ``__main__`` by
``runpy`` exactly as ``python -m`` / ``python SCRIPT`` run it, and an exit code (an uncaught
exception prints its traceback and exits 1, ``SystemExit`` exits with its code, a signal gives a
negative return code). Python's own shutdown (``atexit`` handlers, flushing) runs in the child.

What a forked child cannot show is what happens while the interpreter starts and imports: output
printed at import time and import errors. Tests about those keep a real subprocess (and so do
tests that kill or time a process from outside, or that check what a process imports). The
server imports with the environment of the jobs it serves: jobs whose environments differ in a
variable read at start-up (``PYTHON*``, ``LD_*``, thread libraries other than ``OMP_NUM_THREADS``,
which the child applies itself) are served by separate servers, one per such environment.

Client: :func:`run` (one command, like ``subprocess.run(..., capture_output=True, text=True)``)
and :func:`run_many` (several commands, ``parallel`` at a time). Server: this file as a script;
it reads one JSON batch per line on stdin and answers one JSON line per batch on the pipe whose
file descriptor is its argument.
"""
import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PRELOAD = ('gimsanet_arch', 'gimsanet_arch.commands.basicsr_cli', 'basicsr.train', 'basicsr.test',
           'gimsanet_arch.commands.denoise')
# read once, when the interpreter or a library starts: jobs that differ in one get their own server
STARTUP_VARS = ('PYTHON', 'LD_', 'MKL_', 'OPENBLAS_', 'KMP_', 'CUDA_', 'TORCH_', 'MALLOC_')
DEFAULT_ENV = {'OMP_NUM_THREADS': '2', 'PYTHONWARNINGS': 'ignore'}


# ----------------------------------------------------------------------------- server
def _serve(requests, replies):
    """Answer batches until stdin closes; returns the job to run in a forked child (None in the server)."""
    for line in requests:
        batch = json.loads(line)
        jobs, parallel = batch['jobs'], max(1, int(batch.get('parallel', 1)))
        results = [None] * len(jobs)
        running = {}  # pid -> (index, deadline)
        pending = list(range(len(jobs)))
        while pending or running:
            while pending and len(running) < parallel:
                index = pending.pop(0)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    return jobs[index]
                timeout = jobs[index].get('timeout')
                running[pid] = (index, None if timeout is None else time.monotonic() + timeout)
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.02)
                now = time.monotonic()
                for child, (index, deadline) in running.items():
                    if deadline is not None and now > deadline and results[index] is None:
                        os.kill(child, 9)  # what subprocess.run does on its timeout
                        results[index] = {'timed_out': True}
                continue
            index, _ = running.pop(pid)
            result = results[index] or {}
            result['returncode'] = os.waitstatus_to_exitcode(status)
            results[index] = result
        replies.write(json.dumps({'results': results}) + '\n')
        replies.flush()
    return None


def _run_job(job):
    """In the forked child: become ``python ARGV`` (``-m MODULE ...``, ``-c CODE ...`` or
    ``SCRIPT ...``) and run it."""
    import random
    import runpy
    import types
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, job['stdout'], os.O_WRONLY | os.O_TRUNC),
                            (2, job['stderr'], os.O_WRONLY | os.O_TRUNC)):
        new = os.open(path, flags)
        os.dup2(new, fd)
        os.close(new)
    os.chdir(job['cwd'])
    os.environ.clear()
    os.environ.update(job['env'])
    random.seed()  # a fresh interpreter draws new seeds; a fork would share the server's
    if 'numpy' in sys.modules:
        sys.modules['numpy'].random.seed()
    threads = job['env'].get('OMP_NUM_THREADS')
    if threads and 'torch' in sys.modules and threads != job['server_threads']:
        sys.modules['torch'].set_num_threads(int(threads))
    argv = job['argv']
    sys.modules['__main__'] = types.ModuleType('__main__')
    if argv[0] == '-c':
        sys.argv = ['-c'] + argv[2:]
        sys.path[0] = ''
        exec(compile(argv[1], '<string>', 'exec'), sys.modules['__main__'].__dict__)
    elif argv[0] == '-m':
        sys.argv = ['-m'] + argv[2:]
        sys.path[0] = os.getcwd()
        runpy._run_module_as_main(argv[1], alter_argv=True)  # what `python -m` calls
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name='__main__')


def _server_main(reply_fd):
    replies = os.fdopen(reply_fd, 'w')
    os.dup2(2, 1)  # anything printed while importing goes to the server's stderr, not the replies
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception as err:  # the children import it again and fail as a fresh process would
            print(f'warm_python: could not preload {name}: {err}', file=sys.stderr)
            break
    import gc
    gc.freeze()  # the children's collections (and their exit) then skip the preloaded objects
    replies.write(json.dumps({'ready': os.getpid()}) + '\n')
    replies.flush()
    job = _serve(sys.stdin, replies)
    if job is None:
        return
    replies.close()
    _run_job(job)


# ----------------------------------------------------------------------------- client
class _Server:
    def __init__(self, env):
        self.env = env
        read_end, write_end = os.pipe()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(write_end)],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env, cwd=HERE, pass_fds=(write_end,), text=True)
        os.close(write_end)
        self.replies = os.fdopen(read_end, 'r')
        ready = self.replies.readline()
        if not ready:
            raise RuntimeError('warm_python: the server did not start')

    def batch(self, jobs, parallel):
        self.proc.stdin.write(json.dumps({'jobs': jobs, 'parallel': parallel}) + '\n')
        self.proc.stdin.flush()
        line = self.replies.readline()
        if not line:
            raise RuntimeError('warm_python: the server stopped')
        return json.loads(line)['results']

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self.replies.close()


_servers = {}
_lock = threading.Lock()


def _startup_key(env):
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(STARTUP_VARS)))


def _server_for(env):
    key = _startup_key(env)
    with _lock:
        server = _servers.get(key)
        if server is None or server.proc.poll() is not None:
            server = _servers[key] = _Server(env)
        return server


@atexit.register
def close_servers():
    with _lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


def _full_env(env, defaults):
    full = dict(os.environ, **defaults)
    full.update(env or {})
    return full


def run_many(commands, parallel=1, defaults=DEFAULT_ENV):
    """Run several commands, ``parallel`` at a time. ``commands``: dicts with ``argv`` (what follows
    ``python``: ``['-m', MODULE, ...]``, ``['-c', CODE, ...]`` or ``[SCRIPT, ...]``), ``cwd``, optional
    ``env`` (added to ``os.environ`` and ``defaults``) and ``timeout``. Returns one
    ``subprocess.CompletedProcess`` per command, in order (``returncode`` None and ``timed_out``
    True for one stopped at its timeout)."""
    groups = {}
    for i, command in enumerate(commands):
        env = _full_env(command.get('env'), defaults)
        groups.setdefault(_startup_key(env), []).append((i, env))
    out = [None] * len(commands)
    with tempfile.TemporaryDirectory(prefix='warm_python_') as tmp:
        for members in groups.values():
            server = _server_for(members[0][1])
            jobs = []
            for i, env in members:
                c = commands[i]
                job = {'argv': [str(a) for a in c['argv']], 'cwd': str(c['cwd']), 'env': env,
                       'timeout': c.get('timeout'), 'server_threads': server.env.get('OMP_NUM_THREADS'),
                       'stdout': os.path.join(tmp, f'{i}.out'), 'stderr': os.path.join(tmp, f'{i}.err')}
                for key in ('stdout', 'stderr'):
                    open(job[key], 'w').close()
                jobs.append(job)
            for (i, _), job, result in zip(members, jobs, server.batch(jobs, parallel)):
                with open(job['stdout'], errors='replace') as f_out, open(job['stderr'], errors='replace') as f_err:
                    done = subprocess.CompletedProcess([sys.executable] + job['argv'], result['returncode'],
                                                       f_out.read(), f_err.read())
                done.timed_out = bool(result.get('timed_out'))
                if done.timed_out:
                    done.returncode = None
                out[i] = done
    return out


def run(argv, cwd, timeout=600, env=None, defaults=DEFAULT_ENV):
    """``subprocess.run([python] + argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)``
    with the environment of :func:`run_many`; raises ``subprocess.TimeoutExpired`` like it.
    ``defaults={}``: ``os.environ`` plus ``env`` only, as ``subprocess.run`` gives without ``env``."""
    done = run_many([{'argv': argv, 'cwd': cwd, 'env': env, 'timeout': timeout}], defaults=defaults)[0]
    if done.timed_out:
        raise subprocess.TimeoutExpired(done.args, timeout, output=done.stdout, stderr=done.stderr)
    return done


if __name__ == '__main__':
    _server_main(int(sys.argv[1]))
