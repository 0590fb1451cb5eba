"""Dataset preparation helpers: images -> BasicSR LMDBs (and PNG folders), safely.

The output format is exactly what BasicSR 1.4.2 reads (``paired_paths_from_lmdb``,
``paths_from_lmdb``, ``FileClient('lmdb')``, ``imfrombytes``)::

    X.lmdb/
      data.mdb, lock.mdb   LMDB environment; key = image key (ASCII), value = PNG bytes
                           (``cv2.imencode('.png', img_bgr, [cv2.IMWRITE_PNG_COMPRESSION, level])``)
      meta_info.txt        one line per image: ``<key>.png (<h>,<w>,<c>) <compress_level>``
      checksums.txt        ours, next to BasicSR's files: ``<key> <sha256 of the stored bytes>``
                           after a ``#`` header line; BasicSR never reads it
      build_info.json      ours: the parameters of the build (crop size, step, sources, ...)

What this module does differently from ``basicsr/utils/lmdb_util.py``:

* The map size is computed from the encoded data itself (every record, with margin), grown at
  commit boundaries as data arrives: tiny sets never hit ``MapFullError`` and big sets never get
  a guessed terabyte.
* Every output is written into ``X.lmdb.partial/`` and renamed to ``X.lmdb`` only after all data,
  ``meta_info.txt`` and ``checksums.txt`` are on disk (one atomic rename). An existing complete
  ``X.lmdb`` is left alone (a re-run does nothing); a leftover ``X.lmdb.partial`` is the trace of
  an interrupted run and is removed and rebuilt from scratch.
* Missing, unpaired or unreadable inputs, bad or duplicate keys are collected and reported
  together in one :class:`InputError` naming every file, instead of a ``NoneType`` error later.
* :func:`verify_lmdb` reads back every key and checks presence, decodability, shape and checksum.

This module imports only numpy / OpenCV / lmdb / tqdm (scipy, h5py lazily), never torch or
basicsr, so the preparation scripts start fast; the scripts load it by file path for that reason.
Encoding runs in a thread pool (``workers``): OpenCV's codecs and hashlib release the GIL.
"""
import argparse
import collections
import hashlib
import json
import os
import re
import shutil
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
META_INFO = 'meta_info.txt'
CHECKSUMS = 'checksums.txt'
CHECKSUM_HEADER = '# gimsanet_arch lmdb_tools v1: <key> <sha256 of the stored PNG bytes>'
PARTIAL_SUFFIX = '.partial'
#: Build parameters (crop size, sources, ...) stored with an output; a re-run with other
#: parameters refuses to treat the output as done. Hidden in folders (BasicSR's scandir skips it).
BUILD_INFO = {'lmdb': 'build_info.json', 'folder': '.build_info.json'}
#: Test hook: SIGKILL the process after this many records were written (simulates a crash).
KILL_AFTER_ENV = 'GIMSANET_LMDB_KILL_AFTER'
KEY_PATTERN = re.compile(r'^[A-Za-z0-9_-]+$')
_META_LINE = re.compile(r'^(\S+)\.png \((\d+),(\d+),(\d+)\) (\d+)$')

Job = collections.namedtuple('Job', 'source load')
Job.__doc__ = """One unit of work: ``source`` names the input(s) in messages; ``load()`` returns a list
of ``(key, images)`` records, ``images`` a dict ``{slot: uint8 array (H,W) or (H,W,C) BGR}``."""

Target = collections.namedtuple('Target', 'slot path kind')
Target.__doc__ = """An output: images of ``slot`` go to ``path``; ``kind`` is ``'lmdb'`` or ``'folder'``."""


# --------------------------------------------------------------------------------------- errors
class DataPreparationError(Exception):
    """Base class: the scripts turn it into one message on stderr and exit status 2."""


def _format_problems(header, problems, limit=100):
    lines = [f'{header} ({len(problems)} problem{"s" if len(problems) != 1 else ""}):']
    lines += [f'  - {p}' for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f'  ... and {len(problems) - limit} more')
    return '\n'.join(lines)


class InputError(DataPreparationError):
    """Missing, unpaired or unreadable inputs; ``problems`` lists every one of them."""

    def __init__(self, problems, header='Invalid dataset inputs'):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(_format_problems(header, self.problems))


class VerificationError(DataPreparationError):
    """An LMDB failed :func:`verify_lmdb`; ``problems`` lists every failed check."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = list(problems)
        super().__init__(_format_problems(f'LMDB {path} failed verification', self.problems))


# --------------------------------------------------------------------------------------- inputs
def list_images(folder, pattern=None, extensions=IMAGE_EXTENSIONS):
    """Sorted image files directly in ``folder`` (extension case-insensitive).

    ``pattern`` (a compiled regex or string) further filters on the file name.
    Raises :class:`InputError` if the folder is missing.
    """
    if not os.path.isdir(folder):
        raise InputError([f'{folder}: folder not found'])
    if isinstance(pattern, str):
        pattern = re.compile(pattern)
    names = []
    for name in sorted(os.listdir(folder)):
        if name.startswith('.') or not os.path.isfile(os.path.join(folder, name)):
            continue
        if os.path.splitext(name)[1].lower() not in extensions:
            continue
        if pattern is not None and not pattern.search(name):
            continue
        names.append(os.path.join(folder, name))
    return names


def require_files(paths):
    """Raise :class:`InputError` naming every path in ``paths`` that is not an existing file."""
    missing = [f'{p}: file not found' for p in paths if not os.path.isfile(p)]
    if missing:
        raise InputError(missing)


_READ_FLAGS = {'unchanged': cv2.IMREAD_UNCHANGED, 'color': cv2.IMREAD_COLOR, 'gray': cv2.IMREAD_GRAYSCALE}


def read_image(path, mode='unchanged'):
    """Read an 8-bit image as OpenCV does (BGR; gray as 2-D), or raise :class:`InputError`.

    ``mode``: ``'unchanged'`` (as stored; an alpha channel is dropped), ``'color'`` (3-channel BGR)
    or ``'gray'`` (2-D).
    """
    if not os.path.isfile(path):
        raise InputError([f'{path}: file not found'])
    img = cv2.imread(path, _READ_FLAGS[mode])
    if img is None:
        raise InputError([f'{path}: unreadable or corrupt image'])
    if img.dtype != np.uint8:
        raise InputError([f'{path}: expected an 8-bit image, got {img.dtype}'])
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def load_mat_array(path, name):
    """Load variable ``name`` of a MATLAB file as a numpy array in MATLAB's axis order.

    MATLAB 5 files (e.g. SIDD's ``ValidationNoisyBlocksSrgb.mat``) are read with
    ``scipy.io.loadmat``; v7.3 (HDF5) files with h5py, whose reversed (column-major) axes are
    transposed back, so both give e.g. (40, 32, 256, 256, 3).
    """
    if not os.path.isfile(path):
        raise InputError([f'{path}: file not found'])
    import scipy.io
    try:
        mat = scipy.io.loadmat(path, variable_names=[name])
    except NotImplementedError:  # scipy: "Please use HDF reader for matlab v7.3 files"
        mat = None
    except Exception as exc:  # noqa: BLE001  (any parse failure: try HDF5, else report)
        if not _is_hdf5(path):
            raise InputError([f'{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})'])
        mat = None
    if mat is None:
        return _load_mat_hdf5(path, name)
    if name not in mat:
        try:
            found = [v[0] for v in scipy.io.whosmat(path)]
        except Exception:  # noqa: BLE001
            found = []
        raise InputError([f'{path}: variable {name!r} not found (variables: {", ".join(found) or "none"})'])
    return mat[name]


def _is_hdf5(path):
    try:
        import h5py
        return h5py.is_hdf5(path)
    except Exception:  # noqa: BLE001
        return False


def _load_mat_hdf5(path, name):
    import h5py
    try:
        with h5py.File(path, 'r') as f:
            if name not in f:
                raise InputError([f'{path}: variable {name!r} not found (variables: {", ".join(f.keys()) or "none"})'])
            arr = np.asarray(f[name][()])
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError([f'{path}: unreadable MATLAB v7.3/HDF5 file ({type(exc).__name__}: {exc})'])
    return np.ascontiguousarray(np.transpose(arr))


def sanitize_key(name):
    """A BasicSR-safe LMDB key from a file stem: ASCII letters, digits, ``_`` and ``-`` only.

    (BasicSR derives keys from ``meta_info.txt`` with ``line.split('.')[0]``, so a key must not
    contain a dot, and the line format forbids spaces.)
    """
    return re.sub(r'[^A-Za-z0-9_-]', '_', name)


def _key_problem(key):
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        return f'invalid key {key!r} (allowed: ASCII letters, digits, "_", "-")'
    return None


# --------------------------------------------------------------------------------------- images
def encode_png(img, compress_level=1):
    """PNG bytes and ``(h, w, c)`` of a uint8 BGR/gray image, as BasicSR's ``read_img_worker``."""
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise ValueError('cv2.imencode failed')
    h, w = img.shape[:2]
    c = 1 if img.ndim == 2 else img.shape[2]
    return buf.tobytes(), (h, w, c)


def crop_positions(length, crop_size, step, thresh_size=0):
    """Start offsets along one axis, exactly as BasicSR's ``extract_subimages``.

    An axis shorter than ``crop_size`` yields ``[]`` (BasicSR would crash on it).
    """
    if length < crop_size:
        return []
    space = list(range(0, length - crop_size + 1, step))
    if length - (space[-1] + crop_size) > thresh_size:
        space.append(length - crop_size)
    return space


def extract_subimages(img, crop_size, step, thresh_size=0, keep_small=True):
    """Overlapping crops of ``img`` as ``[(index, crop)]``, ``index`` from 1 in BasicSR's order
    (rows then columns); BasicSR names them ``<name>_s{index:03d}``.

    An image smaller than ``crop_size`` in either dimension is returned whole as index 1 when
    ``keep_small`` (else ``[]``).
    """
    h, w = img.shape[:2]
    hs, ws = crop_positions(h, crop_size, step, thresh_size), crop_positions(w, crop_size, step, thresh_size)
    if not hs or not ws:
        return [(1, img)] if keep_small else []
    crops = []
    index = 0
    for y in hs:
        for x in ws:
            index += 1
            crops.append((index, np.ascontiguousarray(img[y:y + crop_size, x:x + crop_size, ...])))
    return crops


def crop_key(key, index):
    return f'{key}_s{index:03d}'


def find_pairs(folder, noisy_tag, clean_tag, extensions=IMAGE_EXTENSIONS, clean_folder=None, strict=True):
    """Pair noisy and clean files of ``folder`` whose names differ only by a tag.

    The key of a file is its stem with the first (case-insensitive) occurrence of its tag
    removed, e.g. ``*_real.JPG`` / ``*_mean.JPG`` (PolyU, Nam) or ``0001_NOISY_SRGB_010.PNG`` /
    ``0001_GT_SRGB_010.PNG`` (SIDD, key ``0001_SRGB_010``). Files with neither tag are ignored.
    ``clean_folder``: the clean images lie in another folder (e.g. ``CC/real/`` and ``CC/mean/``).

    Returns:
        ``[(key, noisy_path, clean_path)]`` sorted by key; with ``strict=False`` a tuple
        ``(pairs, problems)`` instead of raising for unpaired / duplicate files.

    Raises:
        InputError: naming every unpaired file and every key claimed twice (also when the folder
            is missing or holds no pair).
    """
    tags = {'noisy': re.compile(re.escape(noisy_tag), re.I), 'clean': re.compile(re.escape(clean_tag), re.I)}
    found = {'noisy': {}, 'clean': {}}
    problems = []
    paths = list_images(folder, extensions=extensions)
    if clean_folder and os.path.abspath(clean_folder) != os.path.abspath(folder):
        paths += list_images(clean_folder, extensions=extensions)
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        for role, tag in tags.items():
            key, n = tag.subn('', stem, count=1)
            if n:
                key = sanitize_key(key)
                if key in found[role]:
                    problems.append(f'{path}: same key {key!r} as {found[role][key]}')
                else:
                    found[role][key] = path
                break
    noisy, clean = found['noisy'], found['clean']
    problems += [f'{noisy[k]}: no matching clean image (*{clean_tag}*) for it' for k in sorted(set(noisy) - set(clean))]
    problems += [f'{clean[k]}: no matching noisy image (*{noisy_tag}*) for it' for k in sorted(set(clean) - set(noisy))]
    if problems and strict:
        raise InputError(problems, header=f'Unpaired or duplicate images in {folder}')
    if not noisy and not problems:
        where = folder if not clean_folder else f'{folder} + {clean_folder}'
        raise InputError([f'{where}: no *{noisy_tag}* / *{clean_tag}* image pairs found'])
    pairs = [(k, noisy[k], clean[k]) for k in sorted(set(noisy) & set(clean))]
    return pairs if strict else (pairs, problems)


def single_image_jobs(items, mode='unchanged', crop=None):
    """One :class:`Job` per ``(key, path)``: read with ``mode``; with ``crop = (crop_size, step,
    thresh_size)`` the records are BasicSR sub-images ``<key>_s001``, ... (small images whole)."""

    def make(key, path):
        def load():
            img = read_image(path, mode)
            if crop is None:
                return [(key, img)]
            return [(crop_key(key, i), c) for i, c in extract_subimages(img, *crop)]
        return Job(path, load)

    return [make(key, path) for key, path in items]


def paired_image_jobs(items, mode='unchanged', crop=None):
    """One :class:`Job` per ``(key, noisy_path, clean_path)`` giving ``{'lq': noisy, 'gt': clean}``
    records, both cropped at the same positions; a size mismatch is reported as an input error."""

    def make(key, lq_path, gt_path):
        def load():
            problems, imgs = [], {}
            for slot, path in (('lq', lq_path), ('gt', gt_path)):
                try:
                    imgs[slot] = read_image(path, mode)
                except InputError as exc:
                    problems += exc.problems
            if problems:
                raise InputError(problems)
            return paired_records(key, imgs['lq'], imgs['gt'], crop, source=f'{lq_path} / {gt_path}')
        return Job(f'{lq_path} / {gt_path}', load)

    return [make(*item) for item in items]


def paired_records(key, lq, gt, crop=None, source=None):
    """``[(key, {'lq', 'gt'})]`` for one pair, optionally cropped into sub-images."""
    if lq.shape != gt.shape:
        raise InputError([f'{source or key}: noisy image is {lq.shape} but clean image is {gt.shape}'])
    if crop is None:
        return [(key, {'lq': lq, 'gt': gt})]
    lq_crops = extract_subimages(lq, *crop)
    gt_crops = extract_subimages(gt, *crop)
    return [(crop_key(key, i), {'lq': a, 'gt': b}) for (i, a), (_, b) in zip(lq_crops, gt_crops)]


# --------------------------------------------------------------------------------------- status
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
            env = lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True)
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


def folder_status(path):
    if os.path.isdir(path):
        return 'complete'
    if os.path.exists(path):
        return 'inconsistent'
    return 'partial' if os.path.exists(path + PARTIAL_SUFFIX) else 'missing'


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


# --------------------------------------------------------------------------------------- sinks
class _LmdbSink:

    def __init__(self, path, compress_level, batch_records, batch_bytes, log):
        self.path = path
        self.partial = path + PARTIAL_SUFFIX
        self.compress_level = compress_level
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        if os.path.exists(self.partial):
            log(f'{self.partial}: left by an interrupted run; removing it and rebuilding')
            shutil.rmtree(self.partial)
        os.makedirs(self.partial)
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
        _write_lines(os.path.join(self.partial, META_INFO), self.meta)
        if info is not None:
            _write_lines(os.path.join(self.partial, BUILD_INFO['lmdb']), [json.dumps(info, sort_keys=True)])
        _write_lines(os.path.join(self.partial, CHECKSUMS), [CHECKSUM_HEADER] + self.sums)
        _commit_dir(self.partial, self.path, overwrite)

    def abort(self):
        try:
            self.env.close()
        finally:
            shutil.rmtree(self.partial, ignore_errors=True)


class _FolderSink:

    def __init__(self, path, log):
        self.path = path
        self.partial = path + PARTIAL_SUFFIX
        if os.path.exists(self.partial):
            log(f'{self.partial}: left by an interrupted run; removing it and rebuilding')
            shutil.rmtree(self.partial)
        os.makedirs(self.partial)

    def add(self, key, buf, shape, digest):
        with open(os.path.join(self.partial, f'{key}.png'), 'wb') as f:
            f.write(buf)

    def flush(self):
        pass

    def finish(self, overwrite, info):
        if info is not None:
            _write_lines(os.path.join(self.partial, BUILD_INFO['folder']), [json.dumps(info, sort_keys=True)])
        _commit_dir(self.partial, self.path, overwrite)

    def abort(self):
        shutil.rmtree(self.partial, ignore_errors=True)


def _write_lines(path, lines):
    with open(path, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))
        f.flush()
        os.fsync(f.fileno())


def _commit_dir(partial, final, overwrite):
    if os.path.exists(final):
        if not overwrite:
            raise DataPreparationError(f'{final} appeared while building; not replacing it')
        shutil.rmtree(final) if os.path.isdir(final) else os.remove(final)
    os.rename(partial, final)
    try:
        fd = os.open(os.path.dirname(os.path.abspath(final)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# --------------------------------------------------------------------------------------- build
def _ordered_map(fn, items, workers):
    """``map(fn, items)`` in order, with at most ``2 * workers`` items in flight."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _run_job(job, slots, compress_level):
    """Load one job and encode the images of ``slots``: (records, problems)."""
    try:
        records = job.load()
    except InputError as exc:
        return [], exc.problems
    except Exception as exc:  # noqa: BLE001  (report with the source, go on with the others)
        return [], [f'{job.source}: {type(exc).__name__}: {exc}']
    out, problems = [], []
    for key, images in records:
        encoded = {}
        for slot in slots:
            img = images.get(slot) if isinstance(images, dict) else None
            if img is None:
                problems.append(f'{job.source}: no {slot!r} image for key {key!r}')
                continue
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim not in (2, 3) or img.size == 0:
                problems.append(f'{job.source}: {slot} image for key {key!r} is not a non-empty uint8 '
                                f'(H,W) or (H,W,C) array (got {img.dtype} {img.shape})')
                continue
            buf, shape = encode_png(img, compress_level)
            encoded[slot] = (buf, shape, hashlib.sha256(buf).hexdigest())
        out.append((key, encoded))
    return out, problems


def _default_log(msg):
    print(msg, file=sys.stderr, flush=True)


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


def build(targets, jobs, workers=1, compress_level=1, overwrite=False, desc=None, total=None, info=None,
          input_problems=(),
          batch_records=1000, batch_bytes=256 << 20, progress=True, log=_default_log):
    """Write the records of ``jobs`` to every target that is not already complete.

    Args:
        targets: list of :class:`Target` (``slot``, ``path``, ``kind`` 'lmdb' | 'folder').
        jobs: iterable of :class:`Job`; each ``load()`` returns ``[(key, {slot: image})]``.
            Loading and PNG encoding run in a pool of ``workers`` threads; records are written
            in job order.
        overwrite: rebuild targets that are complete already (default: leave them alone).
        info: JSON-serialisable build parameters, stored with each output. A complete output whose
            stored parameters differ is an error (not silently reused) unless ``overwrite``.
        total: number of jobs, for the progress bar (``len(jobs)`` when it has one).
        input_problems: problems found before (e.g. unpaired files): nothing is committed, but
            the jobs still run so that the error lists these and every unreadable file together.

    Returns:
        dict ``{path: 'skipped' | 'built'}``.

    Raises:
        InputError: listing every unreadable input / bad key once all jobs ran; nothing is
            committed then (partial outputs are removed).
        DataPreparationError: an output path exists but is not a complete LMDB.
    """
    targets = [Target(*t) for t in targets]
    result, todo, bad = {}, [], []
    for t in targets:
        if t.kind not in ('lmdb', 'folder'):
            raise ValueError(f'unknown target kind {t.kind!r}')
        if t.kind == 'lmdb' and not t.path.endswith('.lmdb'):
            raise ValueError(f"LMDB path must end with '.lmdb' (BasicSR requires it): {t.path}")
        status = lmdb_status(t.path) if t.kind == 'lmdb' else folder_status(t.path)
        old_info = read_build_info(t.path, t.kind) if status == 'complete' else None
        if info is not None:
            info = json.loads(json.dumps(info))  # normalise (tuples -> lists) for comparison
        if status == 'complete' and not overwrite and info is not None and old_info is not None \
                and old_info != info:
            changed = sorted(k for k in set(info) | set(old_info) if info.get(k) != old_info.get(k))
            bad.append(f'{t.path}: exists but was built with other parameters ('
                       + ', '.join(f'{k}: {old_info.get(k)!r} there, {info.get(k)!r} now' for k in changed)
                       + '); pass --overwrite or choose another output path')
        elif status == 'complete' and not overwrite:
            log(f'{t.path}: complete already, left alone')
            result[t.path] = 'skipped'
        elif status == 'inconsistent' and not overwrite:
            bad.append(f'{t.path}: exists but is not a complete LMDB/folder (no data.mdb or '
                       f'meta_info.txt, or key counts differ); remove it or pass --overwrite')
        else:
            todo.append(t)
    if bad:
        raise DataPreparationError('\n'.join(bad))
    if not todo:
        return result
    if total is None and hasattr(jobs, '__len__'):
        total = len(jobs)
    slots = sorted({t.slot for t in todo})
    for t in todo:
        parent = os.path.dirname(os.path.abspath(t.path))
        os.makedirs(parent, exist_ok=True)
    kill_after = int(os.environ.get(KILL_AFTER_ENV, '0') or 0)

    sinks = []
    try:
        for t in todo:
            sink = (_LmdbSink(t.path, compress_level, batch_records, batch_bytes, log)
                    if t.kind == 'lmdb' else _FolderSink(t.path, log))
            sinks.append((t, sink))
        problems, seen, n_records = list(input_problems), set(), 0
        bar = tqdm(total=total, unit='img', desc=desc or os.path.basename(todo[0].path), disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        for records, job_problems in _ordered_map(lambda j: _run_job(j, slots, compress_level), jobs, workers):
            bar.update(1)
            problems.extend(job_problems)
            for key, encoded in records:
                key_problem = _key_problem(key)
                if key_problem is None and key in seen:
                    key_problem = f'duplicate key {key!r}'
                if key_problem is not None:
                    problems.append(key_problem)
                    continue
                seen.add(key)
                if problems or len(encoded) != len(slots):
                    continue  # the build fails anyway; keep going only to report every problem
                for t, sink in sinks:
                    sink.add(key, *encoded[t.slot])
                n_records += 1
                if kill_after and n_records >= kill_after:
                    for _, sink in sinks:
                        sink.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            bar.set_postfix(records=n_records, refresh=False)
        bar.close()
        if not problems and n_records == 0:
            problems.append('no images found in the inputs')
        if problems:
            raise InputError(problems, header=f'Cannot build {", ".join(t.path for t in todo)}')
        for t, sink in sinks:
            sink.finish(overwrite, info)
            result[t.path] = 'built'
            log(f'{t.path}: wrote {n_records} records')
    except BaseException:
        for t, sink in sinks:
            if result.get(t.path) != 'built':
                sink.abort()
        raise
    return result


def _single_slot_jobs(jobs, slot):
    for job in jobs:
        yield Job(job.source, (lambda load: lambda: [(k, {slot: img}) for k, img in load()])(job.load))


def build_lmdb(lmdb_path, jobs, folder=None, **kwargs):
    """One LMDB (and optionally a PNG folder) from jobs whose ``load()`` returns ``[(key, image)]``."""
    targets = [Target('img', lmdb_path, 'lmdb')] if lmdb_path else []
    if folder:
        targets.append(Target('img', folder, 'folder'))
    if 'total' not in kwargs and hasattr(jobs, '__len__'):
        kwargs['total'] = len(jobs)
    return build(targets, _single_slot_jobs(jobs, 'img'), **kwargs)


def build_paired_lmdbs(lq_path, gt_path, jobs, lq_folder=None, gt_folder=None, **kwargs):
    """Paired LMDBs with identical keys (BasicSR ``PairedImageDataset``) from jobs returning
    ``[(key, {'lq': noisy, 'gt': clean})]``; optional PNG folders of the same images."""
    targets = []
    if lq_path:
        targets += [Target('lq', lq_path, 'lmdb'), Target('gt', gt_path, 'lmdb')]
    if lq_folder:
        targets += [Target('lq', lq_folder, 'folder'), Target('gt', gt_folder, 'folder')]
    result = build(targets, jobs, **kwargs)
    if lq_path:
        check_same_keys(lq_path, gt_path)
    return result


# --------------------------------------------------------------------------------------- reading
def read_meta_info(lmdb_path):
    """``[(key, (h, w, c), compress_level)]`` of ``meta_info.txt``; raises on malformed lines."""
    entries, problems = [], []
    with open(os.path.join(lmdb_path, META_INFO)) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line.strip():
                continue
            m = _META_LINE.match(line)
            if m is None or '.' in m.group(1):
                problems.append(f'{META_INFO} line {n}: malformed {line!r}')
                continue
            entries.append((m.group(1), tuple(int(m.group(i)) for i in (2, 3, 4)), int(m.group(5))))
    if problems:
        raise VerificationError(lmdb_path, problems)
    return entries


def read_lmdb_image(lmdb_path, key, mode='unchanged'):
    """Decode one image of an LMDB (tests and debugging); raises ``KeyError`` naming the key."""
    env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False, subdir=True)
    try:
        with env.begin() as txn:
            buf = txn.get(key.encode('ascii'))
    finally:
        env.close()
    if buf is None:
        raise KeyError(f'{key!r} not in {lmdb_path}')
    return cv2.imdecode(np.frombuffer(buf, np.uint8), _READ_FLAGS[mode])


def check_same_keys(lq_path, gt_path):
    """Raise :class:`VerificationError` unless both LMDBs list the same keys with equal (h, w)."""
    lq = {k: s for k, s, _ in read_meta_info(lq_path)}
    gt = {k: s for k, s, _ in read_meta_info(gt_path)}
    problems = [f'key {k!r} only in {lq_path}' for k in sorted(set(lq) - set(gt))]
    problems += [f'key {k!r} only in {gt_path}' for k in sorted(set(gt) - set(lq))]
    problems += [f'key {k!r}: shape {lq[k]} in {lq_path} but {gt[k]} in {gt_path}'
                 for k in sorted(set(lq) & set(gt)) if lq[k][:2] != gt[k][:2]]
    if problems:
        raise VerificationError(f'{lq_path} + {gt_path}', problems)


def _check_record(item):
    key, shape, buf, digest = item
    if buf is None:
        return [f'key {key!r}: listed in {META_INFO} but missing from the database']
    problems = []
    if digest is not None and hashlib.sha256(buf).hexdigest() != digest:
        problems.append(f'key {key!r}: checksum mismatch (stored bytes changed)')
    img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        return problems + [f'key {key!r}: stored bytes do not decode as an image']
    got = (img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2])
    if got != tuple(shape):
        problems.append(f'key {key!r}: decoded shape {got} but {META_INFO} says {tuple(shape)}')
    return problems


def verify_lmdb(lmdb_path, workers=1, progress=False):
    """Read back every key of a BasicSR LMDB and check it.

    Checks: ``data.mdb`` / ``meta_info.txt`` present and well-formed, no duplicate keys, the
    database holds exactly the listed keys, every value decodes to the listed shape, and (when
    ``checksums.txt`` exists) matches its SHA-256.

    Returns:
        dict ``{'path', 'records', 'checksums': bool}``.

    Raises:
        VerificationError: listing every failed check.
    """
    if not os.path.isdir(lmdb_path):
        state = 'an interrupted build (.partial) exists' if os.path.exists(lmdb_path + PARTIAL_SUFFIX) else 'missing'
        raise VerificationError(lmdb_path, [f'not a folder ({state})'])
    missing = [f'{n} missing' for n in ('data.mdb', META_INFO) if not os.path.isfile(os.path.join(lmdb_path, n))]
    if missing:
        raise VerificationError(lmdb_path, missing)
    entries = read_meta_info(lmdb_path)
    problems = []
    counts = collections.Counter(k for k, _, _ in entries)
    problems += [f'key {k!r} listed {n} times in {META_INFO}' for k, n in counts.items() if n > 1]
    sums = None
    sums_path = os.path.join(lmdb_path, CHECKSUMS)
    if os.path.isfile(sums_path):
        sums = {}
        with open(sums_path) as f:
            for line in f:
                if line.startswith('#') or not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2:
                    problems.append(f'{CHECKSUMS}: malformed line {line.rstrip()!r}')
                    continue
                sums[parts[0]] = parts[1]
        problems += [f'key {k!r}: no checksum in {CHECKSUMS}' for k in counts if k not in sums]
        problems += [f'key {k!r}: in {CHECKSUMS} but not in {META_INFO}' for k in sums if k not in counts]
    env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False, subdir=True)
    try:
        with env.begin() as txn:
            db_keys = set()
            with txn.cursor() as cur:
                for k in cur.iternext(keys=True, values=False):
                    db_keys.add(k.decode('ascii', 'replace'))
            problems += [f'key {k!r}: in the database but not in {META_INFO}' for k in sorted(db_keys - set(counts))]

            def items():
                for key, shape, _ in entries:
                    yield key, shape, txn.get(key.encode('ascii')), (sums or {}).get(key)

            bar = tqdm(total=len(entries), unit='img', desc=f'verify {os.path.basename(lmdb_path)}',
                       disable=not progress, file=sys.stderr)
            for record_problems in _ordered_map(_check_record, items(), workers):
                problems += record_problems
                bar.update(1)
            bar.close()
    finally:
        env.close()
    if not entries:
        problems.append(f'{META_INFO} lists no images')
    if problems:
        raise VerificationError(lmdb_path, problems)
    return {'path': lmdb_path, 'records': len(entries), 'checksums': sums is not None}


def verify_paired_lmdbs(lq_path, gt_path, workers=1, progress=False):
    """:func:`verify_lmdb` on both, then :func:`check_same_keys`; returns both reports."""
    reports = [verify_lmdb(lq_path, workers, progress), verify_lmdb(gt_path, workers, progress)]
    check_same_keys(lq_path, gt_path)
    return reports


# --------------------------------------------------------------------------------------- CLI helpers
def add_common_arguments(parser):
    """``--workers``, ``--verify``, ``--overwrite``, ``--compress-level``, ``--no-progress``."""
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                        help='threads that read, crop and PNG-encode images (default: min(8, CPUs))')
    parser.add_argument('--verify', action='store_true',
                        help='read back every key of every output LMDB and check shape and checksum')
    parser.add_argument('--overwrite', action='store_true',
                        help='rebuild outputs that exist already (default: leave complete ones alone)')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression level of the stored images (BasicSR uses 1)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def build_kwargs(args):
    """Keyword arguments of :func:`build` from the common CLI arguments."""
    return dict(workers=max(1, args.workers), compress_level=args.compress_level, overwrite=args.overwrite,
                progress=not args.no_progress)


def verify_outputs(lmdb_paths, args, pairs=()):
    """Verify LMDBs (and paired key equality) after a build when ``--verify`` was given."""
    if not args.verify:
        return
    for path in lmdb_paths:
        report = verify_lmdb(path, workers=max(1, args.workers), progress=not args.no_progress)
        print(f'verified {path}: {report["records"]} records OK'
              f'{"" if report["checksums"] else " (no checksums.txt: decode and shape checks only)"}')
    for lq, gt in pairs:
        check_same_keys(lq, gt)
        print(f'verified {lq} and {gt}: same keys and sizes')


def cli_main(main, argv=None):
    """Run ``main(argv)``; a :class:`DataPreparationError` becomes one message and exit status 2."""
    try:
        main(argv)
    except DataPreparationError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


# ----------------------------------------------------------------------------- real/mean test sets
def _real_mean_args(argv, description, default_input, default_output, noisy_tag, clean_tag):
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='See the module docstring / docs/data_preparation.md for downloads.')
    parser.add_argument('--input', default=default_input,
                        help=f'folder with the *{noisy_tag}.* / *{clean_tag}.* pairs (default: {default_input})')
    parser.add_argument('--output-root', default=default_output,
                        help='writes <root>/input.lmdb and <root>/gt.lmdb (and <root>/input/, gt/ with --png)')
    parser.add_argument('--png', action='store_true', help='also write PNG folders <root>/input/ and <root>/gt/')
    parser.add_argument('--no-lmdb', action='store_true', help='PNG folders only (implies --png)')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def find_real_mean_pairs(folder, noisy_tag='_real', clean_tag='_mean'):
    """(pairs, unpaired-file problems) in ``folder``, or in its ``real/`` and ``mean/`` subfolders."""
    noisy_dir, clean_dir = os.path.join(folder, 'real'), os.path.join(folder, 'mean')
    if os.path.isdir(noisy_dir) and os.path.isdir(clean_dir):
        return find_pairs(noisy_dir, noisy_tag, clean_tag, clean_folder=clean_dir, strict=False)
    return find_pairs(folder, noisy_tag, clean_tag, strict=False)


def real_mean_test_set_main(argv, name, description, default_input, default_output, noisy_tag='_real',
                            clean_tag='_mean'):
    """The whole CLI of a real-noise test set stored as ``*_real`` / ``*_mean`` pairs (PolyU, Nam):
    paired LMDBs ``<root>/input.lmdb`` / ``gt.lmdb`` and optional PNG folders."""
    args = _real_mean_args(argv, description, default_input, default_output, noisy_tag, clean_tag)
    lq, gt = (None, None) if args.no_lmdb else (os.path.join(args.output_root, 'input.lmdb'),
                                                  os.path.join(args.output_root, 'gt.lmdb'))
    folders = (os.path.join(args.output_root, 'input'), os.path.join(args.output_root, 'gt')) \
        if args.png or args.no_lmdb else (None, None)
    statuses = [lmdb_status(p) for p in (lq, gt) if p] + [folder_status(p) for p in folders if p]
    # inputs are only read when something needs building: a re-run of a complete build is a no-op
    pairs, problems = find_real_mean_pairs(args.input, noisy_tag, clean_tag) \
        if args.overwrite or any(s != 'complete' for s in statuses) else ([], [])
    # unpaired files are reported together with unreadable ones (a test set is small to read)
    build_paired_lmdbs(lq, gt, paired_image_jobs(pairs, 'color'), *folders, desc=name,
                       info={'set': name}, input_problems=problems, **build_kwargs(args))
    if lq:
        verify_outputs([lq, gt], args, pairs=[(lq, gt)])
