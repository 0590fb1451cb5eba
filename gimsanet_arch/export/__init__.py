"""Export a registered network to ONNX (dynamic height, width and batch) and TorchScript, each export
checked against the eager network at a new image size; plus a small onnxruntime wrapper that runs an
exported ``.onnx`` in place of an ``nn.Module``. Command: ``gimsanet-export`` (``cli.py``).
"""
