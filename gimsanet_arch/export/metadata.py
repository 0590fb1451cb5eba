"""The facts an exported file carries about its network (ONNX ``metadata_props``, the TorchScript
extra file): read from :mod:`gimsanet_arch.archs.arch_info`, like everywhere else in the package."""
import json

from gimsanet_arch.archs.arch_info import network_in_channels


def describe(net, multiple, pads_in_graph, arch_args=None):
    """The metadata of an export of ``net``, as strings: arch type, input channels, the padding
    multiple, whether the exported graph pads by itself, the constructor arguments and the package
    version. ``arch_args``: the arguments ``net`` was built with (its input channels come from them,
    see :func:`~gimsanet_arch.archs.arch_info.network_in_channels`)."""
    from gimsanet_arch.version import __version__
    return {
        'arch': type(net).__name__,
        'in_channels': str(network_in_channels(net, arch_args)),
        'pad_multiple': str(int(multiple)),
        'pads_in_graph': 'true' if pads_in_graph else 'false',
        'arch_args': json.dumps(arch_args or {}, sort_keys=True),
        'gimsanet_arch_version': __version__,
    }
