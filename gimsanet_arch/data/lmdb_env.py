"""One LMDB environment per process and path, for every reader of the run.

py-lmdb refuses to open an environment that is already open in the process (``lmdb.Error: The
environment ... is already open in this process``), and a run often reads one LMDB from several
datasets: training and validation pointed at the same SIDD LMDB, or ``val_1``..``val_3`` at one
LMDB with different noise levels. So every reader (the plugin's :class:`~gimsanet_arch.data.image_io.LmdbReader`
and BasicSR's own ``LmdbBackend``, through :func:`lmdb_backend_init`) asks :func:`shared_env` for
the environment instead of opening its own.

Fork: a DataLoader worker is a fork of the process that reads the LMDB, and py-lmdb also refuses
in the child a path its parent had open at the fork. Every environment is therefore closed just
before a fork (``os.register_at_fork``); readers hold paths, not environments, so the parent and
each worker reopen on their next read. The cache key holds the process id as well, so an
environment never crosses a fork even where the hook does not run.
"""
import os
import os.path as osp
import threading

_ENVS = {}  # (pid, real path) -> lmdb.Environment
_LOCK = threading.Lock()  # DataLoader pin-memory / prefetch threads may read at the same time

# what read-only readers open with (BasicSR's LmdbBackend defaults plus meminit=False)
READ_FLAGS = {'readonly': True, 'lock': False, 'readahead': False, 'meminit': False}


def shared_env(path, **flags):
    """The process's environment for ``path``, opened on first use with ``flags`` (read-only
    defaults). Later callers get the same environment whatever flags they pass: an LMDB can only
    be open once per process."""
    key = (os.getpid(), osp.realpath(path))
    env = _ENVS.get(key)
    if env is None:
        with _LOCK:
            env = _ENVS.get(key)
            if env is None:
                import lmdb
                from gimsanet_prep.images import ImageReadError
                from gimsanet_prep.lmdb_writer import truncation_problem
                truncated = truncation_problem(str(path))  # reading one would end the process with SIGBUS
                if truncated:
                    raise ImageReadError(truncated)
                env = lmdb.open(str(path), **dict(READ_FLAGS, **flags))
                _ENVS[key] = env
    return env


def close_all():
    """Close every environment this process opened (readers reopen on their next read)."""
    with _LOCK:
        envs = list(_ENVS.values())
        _ENVS.clear()
    for env in envs:
        env.close()


def open_count():
    """How many environments this process holds open (for tests and diagnostics)."""
    return sum(1 for pid, _ in _ENVS if pid == os.getpid())


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(before=close_all)


class _SharedClients:
    """What BasicSR's ``LmdbBackend._client`` holds: client key -> environment. Looked up on every
    read, so an environment closed before a fork is reopened here."""

    def __init__(self, paths, flags):
        self._paths = paths  # client key -> path
        self._flags = flags

    def __contains__(self, client_key):
        return client_key in self._paths

    def __getitem__(self, client_key):
        return shared_env(self._paths[client_key], **self._flags)

    def keys(self):
        return self._paths.keys()


def lmdb_backend_init(original):
    """Replacement for ``basicsr.utils.file_client.LmdbBackend.__init__`` (installed by the table in
    :mod:`gimsanet_arch.compat`): BasicSR opens its own environments here, so a second dataset on
    the same LMDB stops the run. Same arguments and checks; the environments come from
    :func:`shared_env` when a read needs them."""

    def __init__(self, db_paths, client_keys='default', readonly=True, lock=False, readahead=False, **kwargs):
        import lmdb  # noqa: F401  (BasicSR's early, clear ImportError when lmdb is missing)
        client_keys = [client_keys] if isinstance(client_keys, str) else list(client_keys)
        self.db_paths = [str(p) for p in db_paths] if isinstance(db_paths, (list, tuple)) else [str(db_paths)]
        if len(client_keys) != len(self.db_paths):
            raise ValueError(f'client_keys and db_paths should have the same length, but received '
                             f'{len(client_keys)} and {len(self.db_paths)}.')
        flags = dict(kwargs, readonly=readonly, lock=lock, readahead=readahead)
        self._client = _SharedClients(dict(zip(client_keys, self.db_paths)), flags)

    return __init__
