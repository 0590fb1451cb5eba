"""What the hardware does at best, measured in the same run as the models: multiply-adds per
second of a large square matmul and of a 3x3 convolution at GIMSANet's width (49 -> 49 channels,
batch 1, full resolution), in fp32 and bf16.

The bf16 cases run on bf16 tensors (weights and input), not under autocast: they are the rate of
the bf16 kernels themselves (oneDNN's AVX512-BF16/AMX code on CPU, tensor cores on CUDA), which
the models' bf16 paths should approach.
"""
import torch
from torch import nn

from gimsanet_arch.inference import measure
from benchmarks.perf.results import error_row, timing_rows

SECTION = 'roofline'
GIMSANET_WIDTH = 49  # GIMSANet's trunk width (num_feat): every MSAB conv is 49 -> 49
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}
# the conv cases: (dtype, channels_last); NCHW fp32 is the plain path's reference
CONV_CASES = (('fp32', False), ('fp32', True), ('bf16', True))


def matmul_name(dtype):
    return f'matmul {dtype}'


def conv_name(dtype, channels_last=True):
    return f'conv3x3 {GIMSANET_WIDTH}->{GIMSANET_WIDTH} {"channels_last" if channels_last else "NCHW"} {dtype}'


def matmul_case(n, dtype, device):
    """``(call, MACs)`` of an n x n by n x n matmul."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device, DTYPES[dtype])
    b = torch.randn(n, n, generator=generator).to(device, DTYPES[dtype])
    return (lambda: torch.mm(a, b)), n ** 3


def conv_case(size, dtype, channels_last, device, width=GIMSANET_WIDTH):
    """``(call, MACs)`` of a 3x3 ``width -> width`` conv (zero padding 1) on a size x size image."""
    torch.manual_seed(0)
    conv = nn.Conv2d(width, width, 3, padding=1).to(device, DTYPES[dtype]).eval()
    x = torch.rand(1, width, size, size, device=device, dtype=DTYPES[dtype])
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def call():
        return conv(x)
    return call, width * width * 9 * size * size


def measure_rates(device='cpu', matmul_n=2048, conv_size=256, runs=3, warmup=1):
    """Rows of ms and GMAC/s of the matmul (fp32, bf16) and of the conv cases (:data:`CONV_CASES`)."""
    cases = [(matmul_name(d), lambda d=d: matmul_case(matmul_n, d, device), f'{matmul_n}^3') for d in DTYPES]
    cases += [(conv_name(d, cl), lambda d=d, cl=cl: conv_case(conv_size, d, cl, device),
               f'{conv_size}x{conv_size}, batch 1') for d, cl in CONV_CASES]
    rows = []
    for name, make, note in cases:
        try:
            call, macs = make()
            seconds, _ = measure.median_seconds(call, device, runs=runs, warmup=warmup)
            rows += timing_rows(SECTION, name, seconds, macs=macs, note=note)
        except (RuntimeError, NotImplementedError) as err:  # e.g. no bf16 kernel on this device
            rows.append(error_row(SECTION, name, err))
    return rows
