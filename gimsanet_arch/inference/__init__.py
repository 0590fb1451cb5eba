"""Running a network over images: the one place that pads, tiles, self-ensembles and moves data to
the device. Validation (``DenoiseModel``), the comparison/benchmark and the denoise command all
go through :mod:`gimsanet_arch.inference.engine`; :mod:`~gimsanet_arch.inference.network` builds a
network from options and weights, :mod:`~gimsanet_arch.inference.cost` measures its size and speed.
"""
