"""The network to export: built from ``--arch NAME [--arch-args ...]`` or an option file's
``network_g``, with weights from ``--weights`` or the option file's ``path.pretrain_network_g``."""
import os.path as osp

from basicsr.utils.registry import ARCH_REGISTRY  # holds the plugin's archs once gimsanet_arch is imported

from gimsanet_arch.training.checkpoint import CheckpointError, load_network_checked
from gimsanet_arch.inference.network import parse_arch_args  # noqa: F401  (the CLI imports it from here)
from gimsanet_arch.options import OptionError, load_yaml


def model_spec_from_option_file(path):
    """``(arch, arch_args, weights, param_key, pad_multiple)`` from an option file; ``weights`` is
    ``path.pretrain_network_g`` (may be None), ``param_key`` ``path.param_key_g`` (BasicSR's default
    ``params``), ``pad_multiple`` ``val.pad_multiple`` / ``val.window_size`` (None if unset)."""
    opt = load_yaml(path)
    network = dict(opt.get('network_g') or {})
    if 'type' not in network:
        raise OptionError(f'{path} has no network_g.type')
    arch = network.pop('type')
    paths = opt.get('path') or {}
    val = opt.get('val') or {}
    multiple = val.get('pad_multiple', val.get('window_size'))
    return arch, network, paths.get('pretrain_network_g'), paths.get('param_key_g', 'params'), multiple


def build_network(arch, arch_args):
    """An instance of the registered arch ``arch`` (BasicSR's ARCH_REGISTRY) on the CPU."""
    if arch not in ARCH_REGISTRY:
        known = ', '.join(sorted(name for name, _ in ARCH_REGISTRY))
        raise OptionError(f'unknown arch {arch!r}; registered: {known}')
    try:
        return ARCH_REGISTRY.get(arch)(**arch_args)
    except TypeError as err:
        raise OptionError(f'cannot build {arch} with {arch_args}: {err}') from None


def load_model(arch, arch_args, weights, param_key, trust=False):
    """Build the network and load ``weights`` strictly (``param_key`` first, then ``params`` /
    ``params_ema`` / a bare state_dict, see ``load_network_checked``); eval mode."""
    if not weights:
        raise OptionError('no weights: pass --weights CKPT (or set path.pretrain_network_g in the option file)')
    if not osp.isfile(weights):  # before building: a full-size network takes a while to initialise
        raise CheckpointError(f'checkpoint not found: {weights}')
    net = build_network(arch, arch_args)
    load_network_checked(net, weights, strict=True, param_key=param_key, trust=trust)
    return net.eval()
