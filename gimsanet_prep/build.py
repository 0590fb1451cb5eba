"""Building outputs from jobs: which outputs need building, reading and encoding the records in
a thread pool, writing them to every output in job order, and reporting every problem at once.

Outputs that are complete already are left alone (a re-run does nothing); a leftover
``X.lmdb.partial`` is the trace of an interrupted run and is removed and rebuilt from scratch.
Missing, unpaired or unreadable inputs and bad or duplicate keys are collected and reported
together in one :class:`~gimsanet_prep.errors.InputError`; nothing is committed then.
"""
import collections
import hashlib
import json
import os
import sys

import numpy as np
from tqdm import tqdm

from gimsanet_prep.errors import DataPreparationError, InputError
from gimsanet_prep.images import encode_png
from gimsanet_prep.inputs import key_problem
from gimsanet_prep.jobs import Job, ordered_map
from gimsanet_prep.lmdb_writer import FolderSink, LmdbSink, folder_status, lmdb_status, read_build_info
from gimsanet_prep.verify import check_same_keys

Target = collections.namedtuple('Target', 'slot path kind')
Target.__doc__ = """An output: images of ``slot`` go to ``path``; ``kind`` is ``'lmdb'`` or ``'folder'``."""


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


def _targets_to_build(targets, info, overwrite, log, result):
    """The targets that need building; complete ones are recorded as ``'skipped'`` in ``result``."""
    todo, bad = [], []
    for t in targets:
        if t.kind not in ('lmdb', 'folder'):
            raise ValueError(f'unknown target kind {t.kind!r}')
        if t.kind == 'lmdb' and not t.path.endswith('.lmdb'):
            raise ValueError(f"LMDB path must end with '.lmdb' (BasicSR requires it): {t.path}")
        status = lmdb_status(t.path) if t.kind == 'lmdb' else folder_status(t.path)
        old_info = read_build_info(t.path, t.kind) if status == 'complete' else None
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
    return todo


def build(targets, jobs, workers=1, compress_level=1, overwrite=False, desc=None, total=None, info=None,
          input_problems=(), batch_records=1000, batch_bytes=256 << 20, progress=True, log=_default_log):
    """Write the records of ``jobs`` to every target that is not already complete.

    Args:
        targets: list of :class:`Target` (``slot``, ``path``, ``kind`` 'lmdb' | 'folder').
        jobs: iterable of :class:`~gimsanet_prep.jobs.Job`; each ``load()`` returns
            ``[(key, {slot: image})]``. Loading and PNG encoding run in a pool of ``workers``
            threads; records are written in job order.
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
    if info is not None:
        info = json.loads(json.dumps(info))  # normalise (tuples -> lists) for comparison
    result = {}
    todo = _targets_to_build(targets, info, overwrite, log, result)
    if not todo:
        return result
    if total is None and hasattr(jobs, '__len__'):
        total = len(jobs)
    slots = sorted({t.slot for t in todo})
    for t in todo:
        os.makedirs(os.path.dirname(os.path.abspath(t.path)), exist_ok=True)

    sinks = []
    try:
        for t in todo:
            sink = (LmdbSink(t.path, compress_level, batch_records, batch_bytes, log)
                    if t.kind == 'lmdb' else FolderSink(t.path, log))
            sinks.append((t, sink))
        problems, seen, n_records = list(input_problems), set(), 0
        bar = tqdm(total=total, unit='img', desc=desc or os.path.basename(todo[0].path), disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        for records, job_problems in ordered_map(lambda j: _run_job(j, slots, compress_level), jobs, workers):
            bar.update(1)
            problems.extend(job_problems)
            for key, encoded in records:
                problem = key_problem(key)
                if problem is None and key in seen:
                    problem = f'duplicate key {key!r}'
                if problem is not None:
                    problems.append(problem)
                    continue
                seen.add(key)
                if problems or len(encoded) != len(slots):
                    continue  # the build fails anyway; keep going only to report every problem
                for t, sink in sinks:
                    sink.add(key, *encoded[t.slot])
                n_records += 1
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
