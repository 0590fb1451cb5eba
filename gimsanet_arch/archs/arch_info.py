"""What the rest of the package needs to know about a network without reading its code.

For every architecture: the multiple its input height and width must have (``pad_multiple``), the
constructor argument that sets its input channels (``in_channels_arg``) and the constructor
arguments of a tiny instance for plumbing tests (``tiny_config``).

The plugin's own architectures declare these as class attributes next to their code. BasicSR's
archs that our option files use cannot carry our attributes, so they are described in one table
here. Any other arch gets safe guesses: no padding, the input-channel argument found among the
usual names, no tiny configuration.

This module's name does not end in ``_arch.py``, so the registry scan of ``archs/`` skips it.
"""
import inspect
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Optional

# names BasicSR-style constructors give the input channels, in the order they are looked for
IN_CHANNEL_ARG_NAMES = ('in_channels', 'inp_channels', 'img_channel', 'in_chans', 'in_nc', 'num_in_ch')
# channels assumed when a network's constructor gives none (colour, BasicSR's convention)
DEFAULT_IN_CHANNELS = 3
_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class ArchInfo:
    """Facts about one architecture (see the module docstring)."""
    name: str
    pad_multiple: int
    in_channels_arg: Optional[str]
    tiny_config: dict = field(default_factory=dict)


def _constructor_default(cls, arg):
    """Default of constructor argument ``arg``, looked up along the MRO (subclasses such as
    ``NAFNetLocal`` forward ``*args, **kwargs``); ``_NO_DEFAULT`` when there is none."""
    for klass in cls.__mro__:
        if '__init__' in vars(klass):
            param = inspect.signature(klass.__init__).parameters.get(arg)
            if param is not None:
                return param.default
    return _NO_DEFAULT


def _constructor_has(cls, arg):
    return any('__init__' in vars(k) and arg in inspect.signature(k.__init__).parameters for k in cls.__mro__)


def _swinir_window_size(cls, net):
    """BasicSR's SwinIR does not pad: height and width must divide by the attention window.

    An instance knows its window (its blocks shrink it to the image size when that is smaller);
    a class or name only has the constructor default."""
    if net is not None:
        from basicsr.archs.swinir_arch import SwinTransformerBlock
        for module in net.modules():
            if isinstance(module, SwinTransformerBlock):
                return int(module.window_size)
    return int(_constructor_default(cls, 'window_size'))


# BasicSR's own archs that the option files under options/ use
_BASICSR_ARCHS = {
    'SwinIR': dict(in_channels_arg='in_chans', pad_multiple=_swinir_window_size,
                   tiny_config={'embed_dim': 12, 'depths': [1], 'num_heads': [2], 'img_size': 16}),
    # RIDNet's convs all keep the size (padding = dilation), so any size works;
    # its channel attention divides mid_channels by 16
    'RIDNet': dict(in_channels_arg='in_channels', pad_multiple=1,
                   tiny_config={'mid_channels': 16, 'num_block': 1}),
}


def _arch_class(arch):
    """``(class, instance or None)`` for a registered type name, a class or an instance."""
    if isinstance(arch, str):
        import basicsr.archs  # noqa: F401  (fills ARCH_REGISTRY with BasicSR's own archs)
        from basicsr.utils.registry import ARCH_REGISTRY
        return ARCH_REGISTRY.get(arch), None
    if isinstance(arch, type):
        return arch, None
    return type(arch), arch


def _declares_info(cls):
    return all(hasattr(cls, key) for key in ('pad_multiple', 'in_channels_arg', 'tiny_config'))


def arch_info(arch):
    """:class:`ArchInfo` of an arch class, an instance of one, or a registered type name."""
    cls, net = _arch_class(arch)
    name = cls.__name__
    if _declares_info(cls):
        source = net if net is not None else cls  # an instance may override its class's values
        return ArchInfo(name, int(source.pad_multiple), source.in_channels_arg, deepcopy(source.tiny_config))
    known = _BASICSR_ARCHS.get(name)
    if known is not None:
        multiple = known['pad_multiple']
        multiple = multiple(cls, net) if callable(multiple) else multiple
        return ArchInfo(name, int(multiple), known['in_channels_arg'], deepcopy(known['tiny_config']))
    arg = next((a for a in IN_CHANNEL_ARG_NAMES if _constructor_has(cls, a)), None)
    return ArchInfo(name, 1, arg, {})


def pad_multiple(arch):
    """The multiple input height and width must have (1: any size) for a class, instance or name."""
    return arch_info(arch).pad_multiple


def in_channels(network_opt):
    """Input channels of the network a BasicSR ``network_g`` dict builds: the option's value, else
    the constructor default, else ``DEFAULT_IN_CHANNELS`` (no channel argument, or no default)."""
    cls, _ = _arch_class(network_opt['type'])
    arg = arch_info(cls).in_channels_arg
    if arg is None:
        return DEFAULT_IN_CHANNELS
    if network_opt.get(arg) is not None:
        return int(network_opt[arg])
    default = _constructor_default(cls, arg)
    return DEFAULT_IN_CHANNELS if default is _NO_DEFAULT or default is None else int(default)


def network_in_channels(net, args=None):
    """Input channels of a built network ``net``: its constructor ``args`` when they set them, else
    the instance's attribute of the channel argument's name (where the arch keeps one, as GIMSANet
    does), else the constructor default (``DEFAULT_IN_CHANNELS`` without one). Not a guess from the
    layers: a network's first convolution need not take the image (RIDNet's takes 3 channels even
    for gray input)."""
    cls = type(net)
    arg = arch_info(net).in_channels_arg
    if arg is None:
        return DEFAULT_IN_CHANNELS
    if (args or {}).get(arg) is not None:
        return int(args[arg])
    if isinstance(getattr(net, arg, None), int):
        return int(getattr(net, arg))
    default = _constructor_default(cls, arg)
    return DEFAULT_IN_CHANNELS if default is _NO_DEFAULT or default is None else int(default)
