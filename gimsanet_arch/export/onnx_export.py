"""ONNX export with dynamic batch, height and width; the opset goes into the file name
(``<name>.opset18.onnx``) and, with the network's facts, into the model's ``metadata_props``."""
import os
import os.path as osp

import torch

from gimsanet_arch.export.metadata import describe
from gimsanet_arch.export.padding import exportable

EXPORTERS = ('dynamo', 'torchscript')


def export_onnx(net, out_dir, name, multiple=1, opset=18, example_hw=(64, 64), exporter='dynamo',
                pad_in_graph=True, arch_args=None):
    """Export ``net`` to ``out_dir/<name>.opset<N>.onnx`` and return that path.

    ``N`` is the opset actually written (the dynamo exporter raises requests below 18 when it cannot
    convert down). ``multiple > 1`` with ``pad_in_graph`` puts the reflect padding and the crop into
    the graph, so the file takes any image size; without ``pad_in_graph`` callers must pad (the
    metadata's ``pads_in_graph`` says which; see ``metadata.describe``). ``exporter``: ``'dynamo'``
    (``torch.export``, needs onnxscript) or ``'torchscript'`` (the older tracing exporter).
    ``arch_args`` (the constructor arguments) are recorded in the metadata.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    metadata = dict(describe(net, multiple, pad_in_graph, arch_args), exporter=exporter)
    model = exportable(net, multiple if pad_in_graph else 1)
    # batch 2 in the example: the dynamo exporter bakes a batch of 1 into reshapes even when told it is dynamic
    example = torch.rand(2, int(metadata['in_channels']), *example_hw)
    os.makedirs(out_dir, exist_ok=True)
    tmp_path = osp.join(out_dir, f'.{name}.exporting.onnx')
    try:
        with torch.no_grad():
            if exporter == 'dynamo':
                dyn = torch.export.Dim.DYNAMIC
                torch.onnx.export(model, (example,), tmp_path, dynamo=True, opset_version=opset, verbose=False,
                                  input_names=['input'], output_names=['output'], external_data=False,
                                  dynamic_shapes=({0: dyn, 2: dyn, 3: dyn},))
            else:
                axes = {0: 'batch', 2: 'height', 3: 'width'}
                torch.onnx.export(model, (example,), tmp_path, dynamo=False, opset_version=opset,
                                  input_names=['input'], output_names=['output'],
                                  dynamic_axes={'input': axes, 'output': axes})
        written_opset = _write_metadata(tmp_path, metadata)
        path = osp.join(out_dir, f'{name}.opset{written_opset}.onnx')
        os.replace(tmp_path, path)
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
    return path


def _write_metadata(path, metadata):
    """Add ``metadata`` and the opset to the file's ``metadata_props``; return the opset."""
    import onnx

    model = onnx.load(path)
    opset = next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))
    values = dict(metadata, opset=str(opset))
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.save(model, path)
    return opset


def read_metadata(path):
    """The ``metadata_props`` of an ONNX file as a dict (no weights are read)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
