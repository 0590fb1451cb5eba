"""Where ``gimsanet-denoise`` writes, and the rule that keeps the user's files: no output replaces a
file this run did not make (an input, an earlier run's output, anything else in ``-o``) unless
``--overwrite``, and no two inputs of one run share an output. Each refusal is one line naming the
file, given before the model loads; an output whose name is only known after reading (a 16-bit
image written as PNG) is checked again just before it is written.
"""
import glob
import os
import os.path as osp
import tempfile

import numpy as np

from gimsanet_prep.images import is_image_file, list_images

LOSSLESS = {'.png', '.tif', '.tiff'}  # the formats that also hold 16-bit images


class OutputRefused(RuntimeError):
    """An output that would replace a file it must not; the message names both."""


def _inside(path, folder):
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _key(path):
    return osp.normcase(osp.realpath(path))


def collect_inputs(inputs, output=None):
    """``[(path, output name without extension)]`` for files, folders (recursive, relative names
    kept) and glob patterns; raises ValueError for an input that matches nothing. Nothing inside
    the ``output`` folder is taken as input (a second run must not denoise the first run's results).
    Two inputs with one output are refused by :func:`plan_outputs`, which knows the extensions."""
    found = []
    for item in inputs:
        if osp.isdir(item):
            paths = [p for p in list_images(item) if output is None or not _inside(p, output)]
            found += [(p, osp.splitext(osp.relpath(p, item))[0]) for p in paths]
        elif osp.isfile(item):
            found.append((item, osp.splitext(osp.basename(item))[0]))
        else:
            matches = sorted(p for p in glob.glob(item, recursive=True) if osp.isfile(p) and is_image_file(p))
            if not matches:
                raise ValueError(f'no such image file, folder or matching pattern: {item}')
            found += [(p, osp.splitext(osp.basename(p))[0]) for p in matches]
    if not found:
        raise ValueError(f'no input images outside the output folder {output}')
    unique = {}
    for path, name in found:  # the same file given twice (a folder and a glob) is denoised once
        unique.setdefault(osp.normcase(osp.abspath(path)), (path, name))
    return list(unique.values())


def output_path(folder, name, input_path, ext, suffix, dtype):
    """Where the output goes: the input's extension (JPEG -> PNG, and PNG for 16-bit images in a
    format without 16 bits) unless ``ext`` says otherwise."""
    in_ext = osp.splitext(input_path)[1].lower()
    if ext:
        out_ext = '.' + ext.lower().lstrip('.')
    else:
        out_ext = '.png' if in_ext in ('.jpg', '.jpeg') else in_ext
    if dtype.itemsize == 2 and out_ext not in LOSSLESS:
        out_ext = '.png'
    return osp.join(folder, name + suffix + out_ext)


def _why_same(a, b, target):
    """Why two different inputs end up as one output file: the part of the message that helps."""
    exts = {osp.splitext(p)[1].lower() for p in (a, b)}
    out_ext = osp.splitext(target)[1].lower()
    if exts & {'.jpg', '.jpeg'} and out_ext == '.png' and len(exts) > 1:
        return ' (a JPEG is written as PNG)'
    if len(exts) > 1:
        return f' (--ext {out_ext.lstrip(".")} gives both that extension)'
    return ''


class Plan:
    """The inputs to denoise and the output each one is planned to; :meth:`target` gives the real
    output path once the image's bit depth is known, and refuses one that became a clash."""

    def __init__(self, items, args):
        self.items, self.args = items, args
        self.planned = {}  # input path -> planned output path (the 8-bit name)
        self.owner = {}  # output key -> input path, for every planned or written output

    def target(self, path, name, dtype):
        """The output path of ``path`` with ``dtype``; :class:`OutputRefused` if it differs from
        the planned one (a 16-bit image written as PNG) and is another input's output, or a file
        this run did not make (unless --overwrite)."""
        target = output_path(self.args.output, name, path, self.args.ext, self.args.suffix, np.dtype(dtype))
        if target == self.planned[path]:
            return target
        other = self.owner.get(_key(target))
        if other is not None and other != path:
            raise OutputRefused(f'{target} is the output of {other} too (a 16-bit image is written as PNG); '
                                'denoise them in two runs with different -o folders or --suffix values')
        if osp.lexists(target) and not self.args.overwrite:
            raise OutputRefused(f'{target} already exists and this run did not make it (a 16-bit image is '
                                'written as PNG); pass --overwrite to replace it, or choose another -o folder')
        self.owner[_key(target)] = path
        return target


def plan_outputs(items, args):
    """A :class:`Plan` of ``items``, refusing (ValueError, before anything runs) two inputs with one
    output, an output that is one of the inputs or any other existing file, and an output folder
    inside an input folder, the last three unless ``--overwrite``; the output folder is created
    and a probe file written in it, so an unwritable folder fails now, not after every image."""
    if osp.exists(args.output) and not osp.isdir(args.output):
        raise ValueError(f'output {args.output} is a file, not a folder (-o names the folder the results go to)')
    if not args.overwrite:
        for item in args.inputs:
            if osp.isdir(item) and _inside(args.output, item):
                raise ValueError(f'output folder {args.output} is inside the input folder {item}; choose another '
                                 'folder, or pass --overwrite')
    plan, inputs, existing = Plan(items, args), {_key(p) for p, _ in items}, []
    for path, name in items:
        # the output's bit depth is known only after reading: an 8-bit target unless a 16-bit image needs PNG
        target = output_path(args.output, name, path, args.ext, args.suffix, np.dtype(np.uint8))
        other = plan.owner.get(_key(target))
        if other is not None:
            raise ValueError(f'{other} and {path} would both be written as {target}{_why_same(other, path, target)}; '
                             'denoise them in two runs with different -o folders or --suffix values')
        if _key(target) in inputs and not args.overwrite:
            raise ValueError(f'output {target} would replace the input image {path}; choose another -o folder or '
                             '--suffix, or pass --overwrite')
        if osp.lexists(target):
            existing.append(target)
        plan.planned[path], plan.owner[_key(target)] = target, path
    if existing and not args.overwrite:
        more = f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''
        raise ValueError(f'{existing[0]}{more} already exists and this run did not make it; pass --overwrite to '
                         'replace it, or choose another -o folder or --suffix')
    probe_writable(args.output)
    return plan


def probe_writable(folder):
    """Create ``folder`` and write (then remove) a small file in it; ValueError naming it if that fails."""
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.gimsanet-probe-', dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f'cannot write to the output folder {folder}: {err.strerror or err}') from None
