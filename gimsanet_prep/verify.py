"""Reading a built LMDB back: ``meta_info.txt``, single images, and full verification.

:func:`verify_lmdb` reads back every key and checks presence, decodability, shape and checksum;
every failed check is listed in one :class:`~gimsanet_prep.errors.VerificationError`.
"""
import collections
import hashlib
import os
import re
import sys

from tqdm import tqdm

from gimsanet_prep.errors import VerificationError
from gimsanet_prep.images import ImageReadError, decode
from gimsanet_prep.jobs import ordered_map
from gimsanet_prep.lmdb_writer import CHECKSUMS, META_INFO, PARTIAL_SUFFIX, open_readonly, truncation_problem

_META_LINE = re.compile(r'^(\S+)\.png \((\d+),(\d+),(\d+)\) (\d+)$')


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
    env = open_readonly(lmdb_path)
    try:
        with env.begin() as txn:
            buf = txn.get(key.encode('ascii'))
    finally:
        env.close()
    if buf is None:
        raise KeyError(f'{key!r} not in {lmdb_path}')
    return decode(buf, f'{lmdb_path} key {key!r}', mode)


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
    try:
        img = decode(buf, key)
    except ImageReadError:
        return problems + [f'key {key!r}: stored bytes do not decode as an image']
    got = (img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2])
    if got != tuple(shape):
        problems.append(f'key {key!r}: decoded shape {got} but {META_INFO} says {tuple(shape)}')
    return problems


def _read_checksums(lmdb_path, listed_keys):
    """``({key: sha256} or None when there is no checksums.txt, problems)``."""
    path = os.path.join(lmdb_path, CHECKSUMS)
    if not os.path.isfile(path):
        return None, []
    sums, problems = {}, []
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                problems.append(f'{CHECKSUMS}: malformed line {line.rstrip()!r}')
                continue
            sums[parts[0]] = parts[1]
    problems += [f'key {k!r}: no checksum in {CHECKSUMS}' for k in listed_keys if k not in sums]
    problems += [f'key {k!r}: in {CHECKSUMS} but not in {META_INFO}' for k in sums if k not in listed_keys]
    return sums, problems


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
    truncated = truncation_problem(lmdb_path)
    if truncated:
        raise VerificationError(lmdb_path, [truncated])
    entries = read_meta_info(lmdb_path)
    counts = collections.Counter(k for k, _, _ in entries)
    problems = [f'key {k!r} listed {n} times in {META_INFO}' for k, n in counts.items() if n > 1]
    sums, sum_problems = _read_checksums(lmdb_path, counts)
    problems += sum_problems
    env = open_readonly(lmdb_path)
    try:
        with env.begin() as txn:
            with txn.cursor() as cur:
                db_keys = {k.decode('ascii', 'replace') for k in cur.iternext(keys=True, values=False)}
            problems += [f'key {k!r}: in the database but not in {META_INFO}' for k in sorted(db_keys - set(counts))]
            items = ((key, shape, txn.get(key.encode('ascii')), (sums or {}).get(key)) for key, shape, _ in entries)
            bar = tqdm(total=len(entries), unit='img', desc=f'verify {os.path.basename(lmdb_path)}',
                       disable=not progress, file=sys.stderr)
            for record_problems in ordered_map(_check_record, items, workers):
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
