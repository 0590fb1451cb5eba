"""Writing one output, safely: BasicSR's LMDB layout, map sizing, and the atomic ``.partial`` commit.

The output format is exactly what BasicSR 1.4.2 reads (``paired_paths_from_lmdb``,
``paths_from_lmdb``, ``FileClient('lmdb')``, ``imfrombytes``)::

    X.lmdb/
      data.mdb, lock.mdb   LMDB environment; key = image key (ASCII), value = PNG bytes
                           (``cv2.imencode('.png', img_bgr, [cv2.IMWRITE_PNG_COMPRESSION, level])``)
      meta_info.txt        one line per image: ``<key>.png (<h>,<w>,<c>) <compress_level>``
      checksums.txt        ours, next to BasicSR's files: ``<key> <sha256 of the stored bytes>``
                           after a ``#`` header line; BasicSR never reads it
      build_info.json      ours: the parameters of the build (crop size, step, sources, ...)

What differs from ``basicsr/utils/lmdb_util.py``:

* The map size is computed from the encoded data itself (every record, with margin), grown at
  commit boundaries as data arrives: tiny sets never hit ``MapFullError`` and big sets never get
  a guessed terabyte.
* Every output is written into ``X.lmdb.partial/`` and renamed to ``X.lmdb`` only after all data,
  ``meta_info.txt`` and ``checksums.txt`` are on disk (one atomic rename), so a killed run leaves
  a ``.partial`` (rebuilt by the next run), never a half-written ``X.lmdb``.
"""
import json
import os
import shutil

import lmdb

from gimsanet_prep.errors import DataPreparationError

META_INFO = 'meta_info.txt'
CHECKSUMS = 'checksums.txt'
# the format's identifier, written since the first version (files written then carry it too)
CHECKSUM_HEADER = '# gimsanet_arch lmdb_tools v1: <key> <sha256 of the stored PNG bytes>'
PARTIAL_SUFFIX = '.partial'
#: Build parameters (crop size, sources, ...) stored with an output; a re-run with other
#: parameters refuses to treat the output as done. Hidden in folders (BasicSR's scandir skips it).
BUILD_INFO = {'lmdb': 'build_info.json', 'folder': '.build_info.json'}


# ----------------------------------------------------------------------------------- status
def lmdb_status(path):
    """``'complete'``, ``'partial'`` (an interrupted run left ``path.partial``), ``'missing'`` or
    ``'inconsistent'`` (``path`` exists but is not a readable LMDB whose meta_info matches it).

    An LMDB without our ``checksums.txt`` (e.g. made by BasicSR's own script) counts as complete
    when its ``meta_info.txt`` lists exactly as many keys as the database holds.
    """
    if os.path.exists(path):
        if not os.path.isdir(path):
            return 'inconsistent'
        meta = os.path.join(path, META_INFO)
        if not (os.path.isfile(os.path.join(path, 'data.mdb')) and os.path.isfile(meta)):
            return 'inconsistent'
        if os.path.isfile(os.path.join(path, CHECKSUMS)):
            return 'complete'  # ours: only ever appears through the final atomic rename
        try:
            with open(meta) as f:
                n_meta = sum(1 for line in f if line.strip())
            env = open_readonly(path)
            try:
                entries = env.stat()['entries']
            finally:
                env.close()
        except Exception:  # noqa: BLE001
            return 'inconsistent'
        return 'complete' if entries == n_meta and entries > 0 else 'inconsistent'
    if os.path.exists(path + PARTIAL_SUFFIX):
        return 'partial'
    return 'missing'


def open_readonly(path):
    """Open an existing LMDB for reading only (no lock file written, no readahead); a truncated
    ``data.mdb`` raises :class:`~gimsanet_prep.errors.DataPreparationError` first (see
    :func:`truncation_problem`)."""
    problem = truncation_problem(path)
    if problem:
        from gimsanet_prep.errors import DataPreparationError
        raise DataPreparationError(problem)
    return lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True)


# LMDB's meta page (lmdb/mdb.c, 64-bit): 16-byte page header, then MDB_meta: magic, version (u32 each),
# address, mapsize (u64), two MDB_db of 48 bytes (the first one's md_pad is the page size), last_pg, txnid.
_LMDB_MAGIC = 0xBEEFC0DE
_META_PAGE_SIZE, _META_LAST_PG = 16 + 24, 16 + 24 + 96


def truncation_problem(path):
    """Why ``path/data.mdb`` cannot be read safely, before opening it: a file shorter than the pages
    its header says are in use (an interrupted copy, a full disk) makes reads die with SIGBUS, not
    with an error. ``None`` when the size is right (or the file is not a 64-bit LMDB this can read)."""
    import struct
    data = os.path.join(path, 'data.mdb')
    try:
        size = os.path.getsize(data)
        with open(data, 'rb') as f:
            head = f.read(_META_LAST_PG + 16)
            if len(head) < _META_LAST_PG + 16:
                return f'LMDB {path} is truncated: data.mdb has {size} bytes, not even its header; rebuild it with --overwrite'
            page_size = struct.unpack_from('<I', head, _META_PAGE_SIZE)[0]
            if struct.unpack_from('<I', head, 16)[0] != _LMDB_MAGIC or not 512 <= page_size <= 1 << 16:
                return None  # not a layout this check knows: let lmdb itself judge
            f.seek(page_size)
            second = f.read(_META_LAST_PG + 16)
    except OSError:
        return None
    metas = [head] + ([second] if len(second) == len(head) else [])
    # the current meta page is the one with the newer transaction id
    last_pg, _ = max((struct.unpack_from('<QQ', m, _META_LAST_PG) for m in metas), key=lambda t: t[1])
    needed = (last_pg + 1) * page_size
    if size < needed:
        return (f'LMDB {path} is truncated: data.mdb has {size} of {needed} bytes; rebuild it '
                '(the preparation script with --overwrite)')
    return None


def folder_status(path):
    """Like :func:`lmdb_status` for a PNG folder (complete as soon as it exists: it is renamed
    into place only when finished)."""
    if os.path.isdir(path):
        return 'complete'
    if os.path.exists(path):
        return 'inconsistent'
    return 'partial' if os.path.exists(path + PARTIAL_SUFFIX) else 'missing'


def read_build_info(path, kind='lmdb'):
    """The parameters an output was built with (dict), or ``None`` when it has none."""
    info_path = os.path.join(path, BUILD_INFO[kind])
    if not os.path.isfile(info_path):
        return None
    try:
        with open(info_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------------- map size
def required_map_size(record_sizes_pages, n_records, page_size=4096):
    """Map size for ``n_records`` whose values occupy ``record_sizes_pages`` pages in all.

    Adds room for B-tree leaf/branch pages (keys), copy-on-write pages of the open transaction
    and the free list: 25 % + 64 pages + 1 page per 16 records.
    """
    pages = record_sizes_pages + n_records // 16 + 64
    return int(pages * page_size * 1.25) + (1 << 20)


def _value_pages(nbytes, key_len, page_size):
    # values larger than ~half a page go to overflow pages (+16-byte header); smaller ones share
    # leaf pages, for which one page is a generous bound.
    return -(-(nbytes + key_len + 64) // page_size)


# ----------------------------------------------------------------------------------- sinks
class _PartialOutput:
    """An output written into ``path.partial`` and renamed to ``path`` by :meth:`finish`.

    Subclasses implement ``add(key, png_bytes, shape, sha256)`` and may extend ``flush``/``finish``.
    """
    kind = None

    def __init__(self, path, log):
        self.path = path
        self.partial = path + PARTIAL_SUFFIX
        if os.path.exists(self.partial):
            log(f'{self.partial}: left by an interrupted run; removing it and rebuilding')
            shutil.rmtree(self.partial)
        os.makedirs(self.partial)

    def flush(self):
        pass

    def finish(self, overwrite, info):
        if info is not None:
            write_lines(os.path.join(self.partial, BUILD_INFO[self.kind]), [json.dumps(info, sort_keys=True)])
        commit_dir(self.partial, self.path, overwrite)

    def abort(self):
        shutil.rmtree(self.partial, ignore_errors=True)


class LmdbSink(_PartialOutput):
    """Records -> a BasicSR LMDB, committed in batches, the map grown to fit before each commit."""
    kind = 'lmdb'

    def __init__(self, path, compress_level, batch_records, batch_bytes, log):
        super().__init__(path, log)
        self.compress_level = compress_level
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.env = lmdb.open(self.partial, map_size=required_map_size(0, 0), subdir=True, meminit=False)
        self.page_size = self.env.stat()['psize']
        self.map_size = self.env.info()['map_size']
        self.pages = 0
        self.meta = []
        self.sums = []
        self.pending = []
        self.pending_bytes = 0

    def add(self, key, buf, shape, digest):
        self.pending.append((key, buf))
        self.pending_bytes += len(buf)
        self.meta.append(f'{key}.png ({shape[0]},{shape[1]},{shape[2]}) {self.compress_level}')
        self.sums.append(f'{key} {digest}')
        if len(self.pending) >= self.batch_records or self.pending_bytes >= self.batch_bytes:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        self.pages += sum(_value_pages(len(b), len(k), self.page_size) for k, b in self.pending)
        need = required_map_size(self.pages, len(self.meta), self.page_size)
        if need > self.map_size:  # no transaction is open here
            self.env.set_mapsize(need)
            self.map_size = need
        with self.env.begin(write=True) as txn:
            for key, buf in self.pending:
                if not txn.put(key.encode('ascii'), buf, overwrite=False):
                    raise DataPreparationError(f'{self.path}: duplicate key {key!r}')
        self.pending = []
        self.pending_bytes = 0

    def finish(self, overwrite, info):
        self.flush()
        self.env.sync(True)
        self.env.close()
        write_lines(os.path.join(self.partial, META_INFO), self.meta)
        write_lines(os.path.join(self.partial, CHECKSUMS), [CHECKSUM_HEADER] + self.sums)
        super().finish(overwrite, info)

    def abort(self):
        try:
            self.env.close()
        finally:
            super().abort()


class FolderSink(_PartialOutput):
    """Records -> ``<key>.png`` files of a folder (what BasicSR's folder backend reads)."""
    kind = 'folder'

    def add(self, key, buf, shape, digest):
        with open(os.path.join(self.partial, f'{key}.png'), 'wb') as f:
            f.write(buf)


def write_lines(path, lines):
    """Write ``lines`` (newline-terminated) and fsync, so a committed output is on disk."""
    with open(path, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))
        f.flush()
        os.fsync(f.fileno())


def commit_dir(partial, final, overwrite):
    """Rename the finished ``partial`` folder to ``final`` (replacing it only with ``overwrite``)."""
    if os.path.exists(final):
        if not overwrite:
            raise DataPreparationError(f'{final} appeared while building; not replacing it')
        shutil.rmtree(final) if os.path.isdir(final) else os.remove(final)
    os.rename(partial, final)
    try:  # make the rename itself durable
        fd = os.open(os.path.dirname(os.path.abspath(final)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
