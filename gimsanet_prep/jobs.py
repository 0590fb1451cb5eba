"""Units of work of a build and the thread pool that runs them in order.

A :class:`Job` names its input(s) and loads its records lazily, so a build reads, crops and
encodes in worker threads (OpenCV's codecs and hashlib release the GIL) while records are
written in job order.
"""
import collections
from concurrent.futures import ThreadPoolExecutor

from gimsanet_prep.crops import crop_key, extract_subimages
from gimsanet_prep.errors import InputError
from gimsanet_prep.inputs import read_input_image

Job = collections.namedtuple('Job', 'source load')
Job.__doc__ = """One unit of work: ``source`` names the input(s) in messages; ``load()`` returns a list
of ``(key, images)`` records, ``images`` a dict ``{slot: uint8 array (H,W) or (H,W,C) BGR}``."""


def single_image_jobs(items, mode='unchanged', crop=None):
    """One :class:`Job` per ``(key, path)`` giving ``(key, image)`` records: read with ``mode``;
    with ``crop = (crop_size, step, thresh_size)`` the records are BasicSR sub-images
    ``<key>_s001``, ... (small images whole)."""

    def make(key, path):
        def load():
            img = read_input_image(path, mode)
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
                    imgs[slot] = read_input_image(path, mode)
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


def ordered_map(fn, items, workers):
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
