"""Reference outputs of the official Restormer / NAFNet code, stored under tests/fixtures/<arch>/,
and the comparisons the per-arch tests make with them.

Each ``<case>.pt`` was produced by the official implementation (outside this repo) with seeded
random weights: it holds ``kwargs`` (constructor arguments), ``state_dict``, ``input`` and
``output`` (plus arch-specific extras). ``official_configs.json`` maps a published configuration
to its ``kwargs``, its official ``state_dict`` layout (``[key, shape]`` pairs) and ``num_params``.
"""
import json
import os

import torch

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures')
# largest absolute difference from the official output allowed in fp32
ATOL = 1e-5


def load_fixture(arch_dir, case):
    """The stored reference ``tests/fixtures/<arch_dir>/<case>.pt``."""
    return torch.load(os.path.join(FIXTURES, arch_dir, f'{case}.pt'), map_location='cpu', weights_only=True)


def official_configs(arch_dir):
    """``{config name: {'kwargs', 'state_dict', 'num_params'}}`` of the published configurations."""
    with open(os.path.join(FIXTURES, arch_dir, 'official_configs.json')) as f:
        return json.load(f)


def with_official_weights(net, ref):
    """``net`` in eval mode with the reference's weights, loaded strictly (same names and shapes)."""
    net.load_state_dict(ref['state_dict'], strict=True)
    return net.eval()


def max_diff_from_official(net, ref):
    """``(output, largest absolute difference from the official output)`` on the stored input."""
    with torch.no_grad():
        out = with_official_weights(net, ref)(ref['input'])
    return out, (out - ref['output']).abs().max().item()


def state_dict_layout(net):
    """``[[key, shape], ...]`` in order, as stored in ``official_configs.json``."""
    return [[k, list(v.shape)] for k, v in net.state_dict().items()]


def num_params(net):
    return sum(p.numel() for p in net.parameters())


def bf16_outputs(net, x):
    """Outputs of ``net`` (fp32 weights) under CPU bf16 autocast, then of ``net`` cast to bf16."""
    with torch.no_grad():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y_auto = net(x)
        y_cast = net.to(torch.bfloat16)(x.to(torch.bfloat16))
    return y_auto, y_cast
