"""The datasets' side of reading: BasicSR's ``meta_info.txt`` and LMDBs, with errors that name
the file or key.

BasicSR's own readers turn a missing LMDB key or a corrupt file into ``NoneType``/``astype``
errors that name nothing; these helpers raise :class:`ImageReadError` instead. Image files
themselves are listed and decoded by :mod:`gimsanet_prep.images`, the project's one reader.
"""
import os
import os.path as osp

from gimsanet_prep.images import ImageReadError

__all__ = ['ImageReadError', 'LmdbReader', 'read_meta_keys']


def read_meta_keys(meta_info_file):
    """First token of each non-empty line of a BasicSR ``meta_info.txt``, extension removed."""
    if not osp.isfile(meta_info_file):
        raise ImageReadError(f'meta_info file not found: {meta_info_file}')
    with open(meta_info_file) as f:
        names = [line.split(' ')[0].strip() for line in f if line.strip()]
    if not names:
        raise ImageReadError(f'meta_info file is empty: {meta_info_file}')
    return names


class LmdbReader:
    """Read-only access to a BasicSR LMDB, opened lazily (once per DataLoader worker).

    lmdb refuses to open one environment twice in a process, and a run often reads one LMDB from
    several datasets (``val_1``..``val_3`` at different sigmas), so environments are shared per
    process and path. py-lmdb also refuses, in a forked DataLoader worker, a path its parent still
    has open, so every environment is closed before a fork (the parent reopens on its next read).
    """
    _envs = {}

    @classmethod
    def close_all(cls):
        for env in cls._envs.values():
            env.close()
        cls._envs.clear()

    def __init__(self, path):
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise ImageReadError(f'LMDB not found: {path} (no data.mdb)')
        self.path = path

    def _env(self):
        key = (os.getpid(), osp.realpath(self.path))  # environments must not cross a fork
        env = LmdbReader._envs.get(key)
        if env is None:
            import lmdb
            env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
            LmdbReader._envs[key] = env
        return env

    def get(self, key):
        with self._env().begin(write=False) as txn:
            value = txn.get(key.encode('ascii'))
        if value is None:
            raise ImageReadError(f'key "{key}" not found in LMDB {self.path} (check meta_info.txt)')
        return bytes(value)


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(before=LmdbReader.close_all)
