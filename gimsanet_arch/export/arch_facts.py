"""What an export needs to know about a network: its input channels and the size multiple it needs."""
from torch import nn


def pad_multiple(net):
    """Height and width the network needs to be a multiple of (1: any size).

    PLACEHOLDER until ``gimsanet_arch.archs.arch_info.pad_multiple(net)`` exists (the archs will
    declare it themselves); this is the only place in the export package that guesses it.
    """
    return int(getattr(type(net), 'pad_multiple', None) or {'Restormer': 8}.get(type(net).__name__, 1))


def in_channels(net):
    """Image channels the network takes: its ``in_channels`` attribute, else the first conv's input."""
    declared = getattr(net, 'in_channels', None)
    if isinstance(declared, int):
        return declared
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f'cannot tell the input channels of {type(net).__name__}: no in_channels attribute '
                     'and no Conv2d')


def describe(net, multiple, pads_in_graph, arch_args=None):
    """The facts an exported file carries (ONNX metadata_props, TorchScript extra file), as strings:
    arch type, in_channels, pad_multiple, whether the exported graph pads by itself, the constructor
    arguments and the package version."""
    import json

    from gimsanet_arch.version import __version__
    return {
        'arch': type(net).__name__,
        'in_channels': str(in_channels(net)),
        'pad_multiple': str(int(multiple)),
        'pads_in_graph': 'true' if pads_in_graph else 'false',
        'arch_args': json.dumps(arch_args or {}, sort_keys=True),
        'gimsanet_arch_version': __version__,
    }
