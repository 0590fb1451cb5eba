"""One training run per experiment folder: ``experiments/<name>/run.lock``.

BasicSR starts a fresh run by renaming an existing ``experiments/<name>`` to
``<name>_archived_<time>``. A second run started under the same name while the first still trains
would archive the first one's live folder, and the first would then write its checkpoints into
the second one's folder. The lock prevents that:

* the running training holds an exclusive ``flock`` on ``run.lock`` for its whole life (the file
  records its pid, host and start time for the message). The kernel releases the lock when the
  process ends, however it ends, so a lock left by a dead process is stale by construction and
  is simply taken over;
* before anything is created or archived, the CLI asks :func:`holder`: a live holder stops the new
  run with one line naming the process.

The lock is taken by the model (rank 0) once BasicSR has made the run's folder; a flock follows the
file, so it stays with the run even if the folder is renamed.
"""
import atexit
import datetime
import fcntl
import os
import os.path as osp
import socket

LOCK_NAME = 'run.lock'


class RunLockError(RuntimeError):
    """The experiment folder is in use by a running training; the message names the process."""


def _describe(path):
    try:
        with open(path) as f:
            return f.read().strip() or 'a running process'
    except OSError:
        return 'a running process'


def holder(folder):
    """Who holds ``folder``'s run lock (a description), or None when no live process does."""
    path = osp.join(folder, LOCK_NAME)
    if not osp.isfile(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(path)
    finally:
        os.close(fd)  # closing also drops a lock we just took
    return None


def check_free(folder, name):
    """Raise :class:`RunLockError` when a live training holds ``folder`` (nothing is touched)."""
    who = holder(folder)
    if who:
        raise RunLockError(f'experiments/{name} is in use by a training that is still running ({who}); wait for '
                           'it, stop it with kill -TERM <pid> (it saves first), or give this run another name')


class RunLock:
    """Held for the life of the process that made it (or until :meth:`release`)."""

    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        self.path = osp.join(folder, LOCK_NAME)
        self.stale = None
        if osp.isfile(self.path):
            self.stale = _describe(self.path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise RunLockError(f'{folder} is in use by a training that is still running ({_describe(self.path)})') \
                from None
        started = datetime.datetime.now().isoformat(timespec='seconds')
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f'pid {os.getpid()} on {socket.gethostname()}, started {started}\n'.encode())
        atexit.register(self.release)  # a clean exit removes the file: one left behind marks a crash

    def release(self):
        if self.fd is not None:
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
