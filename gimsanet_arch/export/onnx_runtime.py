"""Run an exported ``.onnx`` denoiser with onnxruntime (CPU) where an ``nn.Module`` is expected."""
import torch

from gimsanet_arch.export.padding import reflect_pad_to_multiple


class OnnxModel:
    """An ONNX denoiser called like a network: ``model(x)`` with ``x`` an NCHW float tensor.

    Reads ``in_channels``, ``pad_multiple`` and ``pads_in_graph`` from the file's metadata (written
    by :func:`gimsanet_arch.export.onnx_export.export_onnx`). When the graph does not pad by itself
    the input is reflect-padded here and the output cropped back, so any size works either way.
    Inference runs in float32 on the CPU; the output comes back on the input's device and dtype.
    """

    def __init__(self, path, num_threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: a failed run raises its message anyway (no second copy)
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        declared = self.metadata.get('in_channels', graph_input.shape[1])
        self.in_channels = int(declared) if str(declared).isdigit() else None
        self.pad_multiple = int(self.metadata.get('pad_multiple', 1))
        # files from elsewhere carry no such key: then the caller's multiple is applied here
        self.pads_in_graph = self.metadata.get('pads_in_graph') == 'true'
        self.arch = self.metadata.get('arch', 'onnx')

    def __call__(self, x):
        if x.dim() != 4 or (self.in_channels is not None and x.shape[1] != self.in_channels):
            raise ValueError(f'{self.path} expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}')
        h, w = x.shape[-2], x.shape[-1]
        inp = x.detach().to('cpu', torch.float32)
        if self.pad_multiple > 1 and not self.pads_in_graph:
            inp = reflect_pad_to_multiple(inp, self.pad_multiple)
        out = self.session.run(None, {self.input_name: inp.contiguous().numpy()})[0]
        return torch.from_numpy(out)[:, :, :h, :w].to(device=x.device, dtype=x.dtype)

    def eval(self):
        """No-op, for code that puts its network in eval mode."""
        return self

    def __repr__(self):
        return (f'OnnxModel({self.path!r}, arch={self.arch}, in_channels={self.in_channels}, '
                f'pad_multiple={self.pad_multiple}, pads_in_graph={self.pads_in_graph})')
