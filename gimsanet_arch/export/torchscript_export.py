"""TorchScript export (``<name>.ts.pt``), traced (any arch) or scripted (archs written for it).

Tracing records the shape arithmetic of the padding (ours and NAFNet's) as graph operations, so a
traced file runs at other sizes too; Python branches on sizes are frozen, which the tracer reports as
``TracerWarning`` and which the check at a new size is there to catch. The network's facts travel in
the archive as the extra file ``gimsanet_export.json`` (``torch.jit.load(path, _extra_files=...)``).
"""
import json
import os
import os.path as osp
import warnings

import torch

from gimsanet_arch.export.metadata import describe
from gimsanet_arch.export.padding import exportable

METHODS = ('trace', 'script')
METADATA_FILE = 'gimsanet_export.json'


def export_torchscript(net, out_dir, name, multiple=1, example_hw=(64, 64), method='trace', arch_args=None):
    """Write ``out_dir/<name>.ts.pt``; return ``(path, tracer_warnings)``.

    ``method``: ``'trace'`` (every arch; the default) or ``'script'`` (archs written for it, such as
    GIMSANet; Restormer and NAFNet do not script). ``tracer_warnings`` are the distinct
    TracerWarning messages: places where the trace froze a Python value.
    """
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    metadata = dict(describe(net, multiple, pads_in_graph=True, arch_args=arch_args), torchscript_method=method)
    model = exportable(net, multiple)
    example = torch.rand(2, int(metadata['in_channels']), *example_hw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        # TorchScript is deprecated upstream (FutureWarning on every call); it is still what was asked for
        warnings.filterwarnings('ignore', message='.*is deprecated', category=FutureWarning)
        if method == 'script':
            compiled = torch.jit.script(model)
        else:
            with torch.no_grad():
                compiled = torch.jit.trace(model, example)
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    for w in caught:  # the others are not ours to swallow
        if w not in tracer:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    tracer_warnings = sorted({f'{osp.basename(w.filename)}:{w.lineno}: {str(w.message).splitlines()[0]}'
                              for w in tracer})
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{name}.ts.pt')
    extra = {METADATA_FILE: json.dumps(metadata, sort_keys=True)}
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*is deprecated', category=FutureWarning)
        torch.jit.save(compiled, path, _extra_files=extra)
    return path, tracer_warnings


def load_torchscript(path):
    """``(module, metadata)`` of a file written by :func:`export_torchscript`."""
    extra = {METADATA_FILE: ''}
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*is deprecated', category=FutureWarning)
        module = torch.jit.load(path, map_location='cpu', _extra_files=extra)
    return module.eval(), json.loads(extra[METADATA_FILE] or '{}')
