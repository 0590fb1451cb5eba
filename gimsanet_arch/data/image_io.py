"""The datasets' side of reading: BasicSR's ``meta_info.txt`` and LMDBs, with errors that name
the file or key.

BasicSR's own readers turn a missing LMDB key or a corrupt file into ``NoneType``/``astype``
errors that name nothing; these helpers raise :class:`ImageReadError` instead. Image files
themselves are listed and decoded by :mod:`gimsanet_prep.images`, the project's one reader.
"""
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
    """Read-only access to a BasicSR LMDB, opened lazily (once per process and path: the
    environment comes from :func:`gimsanet_arch.data.lmdb_env.shared_env`, which every reader of
    the run shares and which is reopened after a fork into a DataLoader worker)."""

    def __init__(self, path):
        from gimsanet_prep.lmdb_writer import truncation_problem
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise ImageReadError(f'LMDB not found: {path} (no data.mdb)')
        truncated = truncation_problem(path)  # reading a truncated file would end the process with SIGBUS
        if truncated:
            raise ImageReadError(truncated)
        self.path = path

    def _env(self):
        from gimsanet_arch.data.lmdb_env import shared_env
        return shared_env(self.path)

    def get(self, key):
        import lmdb
        try:
            with self._env().begin(write=False) as txn:
                value = txn.get(key.encode('ascii'))
                value = None if value is None else bytes(value)
        except lmdb.Error as err:  # a damaged page: name the LMDB and the key, not lmdb's internals
            raise ImageReadError(f'LMDB {self.path} is damaged (reading key "{key}": {type(err).__name__}: {err}); '
                                 'rebuild it with the preparation script and --overwrite') from None
        if value is None:
            raise ImageReadError(f'key "{key}" not found in LMDB {self.path} (check meta_info.txt)')
        return value
