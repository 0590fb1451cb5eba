"""Which network to run: a :class:`ModelSpec` from an option file, a ``--model`` argument, an arch
name or the weights themselves, built and loaded once. The one model-loading path of the package:
``gimsanet-denoise``, the comparison, ``gimsanet-benchmark`` and ``gimsanet-export`` all build their
networks here.

Which checkpoint key an option file selects is one rule, :func:`option_param_key`, for every
command: BasicSR's ``path.param_key_g``, else the official Restormer/NAFNet spelling
``path.param_key``, else ``params`` (what ``basicsr test`` loads with the same file). A checkpoint
alone (``--weights`` / ``--arch``, no option file) loads ``params_ema`` first. Either way a missing
key falls back to the other BasicSR group or a bare state_dict
(:func:`~gimsanet_arch.training.checkpoint.extract_state_dict`).
"""
import os.path as osp
from copy import deepcopy

import yaml

from gimsanet_arch.archs.arch_info import in_channels, pad_multiple
from gimsanet_arch.options import OptionError, load_yaml  # noqa: F401  (the one YAML reader; used here and by scripts)
from gimsanet_arch.training.checkpoint import load_network_checked

# the key a checkpoint given alone loads first: BasicSR's EMA weights, where the file has them
CHECKPOINT_PARAM_KEY = 'params_ema'


class ModelSpec:
    """A network to run: ``name``, its ``network_g`` options, an optional checkpoint (none: random
    initial weights), the checkpoint key, strictness, a padding multiple that overrides the
    architecture's own (``val.pad_multiple`` / ``val.window_size`` of an option file), and whether the
    checkpoint may be loaded with full pickle (``trust``; see ``load_checkpoint_file``)."""

    def __init__(self, name, network_opt, checkpoint=None, param_key='params', strict=True, pad_multiple=None,
                 trust=False):
        self.name = name
        self.network_opt = dict(network_opt)
        self.checkpoint = checkpoint or None
        self.param_key = param_key
        self.strict = strict
        self.pad_multiple = pad_multiple
        self.trust = bool(trust)

    @property
    def in_ch(self):
        """Input channels of the network (from its options, else its constructor default)."""
        return in_channels(self.network_opt)

    def __repr__(self):
        return f'ModelSpec({self.name!r}, {self.network_opt.get("type")}, checkpoint={self.checkpoint!r})'


def option_param_key(path_opt):
    """The checkpoint key an option file's ``path`` section selects, the same for every command:
    ``param_key_g`` (BasicSR), else ``param_key`` (the official Restormer/NAFNet option files),
    else ``params`` (BasicSR's default, so the commands load what ``basicsr test`` scores)."""
    path_opt = path_opt or {}
    for key in ('param_key_g', 'param_key'):
        if path_opt.get(key):
            return path_opt[key]
    return 'params'


def spec_from_options(opt, name):
    """A :class:`ModelSpec` from an option dict (``network_g``, ``path.pretrain_network_g``, the key
    of :func:`option_param_key`, ``strict_load_g``, ``trust_checkpoint``, ``val.pad_multiple`` /
    ``window_size``)."""
    if 'network_g' not in opt:
        raise ValueError(f'{name}: no network_g section')
    path_opt = opt.get('path') or {}
    val = opt.get('val') or {}
    return ModelSpec(name, opt['network_g'], path_opt.get('pretrain_network_g'), option_param_key(path_opt),
                     path_opt.get('strict_load_g', True), val.get('pad_multiple', val.get('window_size')),
                     trust=path_opt.get('trust_checkpoint', False))


def spec_from_option_file(path, name=None):
    """A :class:`ModelSpec` from a BasicSR option file (named by ``name``, else its ``name`` option,
    else the file's stem)."""
    opt = load_yaml(path)
    return spec_from_options(opt, name or opt.get('name') or osp.splitext(osp.basename(path))[0])


def parse_arch_args(text):
    """``--arch-args``: constructor arguments from inline YAML/JSON (``'{num_feat: 8}'``) or a .yml/.json file path."""
    if not text:
        return {}
    source = text
    if osp.isfile(text):
        with open(text) as f:
            text = f.read()
    try:
        args = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise OptionError(f'--arch-args {source!r} is not valid YAML/JSON: {str(err).splitlines()[0]}') from None
    if args is None:
        return {}
    if isinstance(args, dict):
        glued = [k for k, v in args.items() if v is None and isinstance(k, str) and ':' in k]
        if glued:  # '{num_feat:4}' is YAML for {'num_feat:4': None}
            raise OptionError(f'--arch-args {source!r}: YAML needs a space after each colon '
                              f'(e.g. "{glued[0].replace(":", ": ", 1)}")')
    if not isinstance(args, dict):
        raise OptionError(f'--arch-args must be a mapping of constructor arguments, got {args!r}')
    return args


def spec_from_arch(arch, weights=None, arch_args=None, name=None, trust=False):
    """A :class:`ModelSpec` for a registered architecture and a checkpoint: a BasicSR checkpoint
    (``params_ema`` first, then ``params``), or an official Restormer/NAFNet ``.pth``, or a bare
    state_dict."""
    from basicsr.utils.registry import ARCH_REGISTRY
    if arch not in ARCH_REGISTRY:
        import difflib
        close = difflib.get_close_matches(arch, sorted(ARCH_REGISTRY.keys()), n=1, cutoff=0.5)
        hint = f' Did you mean "{close[0]}"?' if close else ''
        raise ValueError(f'--arch: unknown architecture "{arch}".{hint} Registered: {", ".join(sorted(ARCH_REGISTRY.keys()))}')
    network_opt = dict(parse_arch_args(arch_args) if isinstance(arch_args, (str, type(None))) else arch_args)
    network_opt['type'] = arch
    return ModelSpec(name or arch, network_opt, weights, param_key=CHECKPOINT_PARAM_KEY, trust=trust)


# architectures whose weights are laid out like a detected one (a detected NAFNet may run as NAFNetLocal)
SAME_WEIGHTS = {'NAFNetLocal': 'NAFNet'}


def spec_from_weights(weights, arch=None, arch_args=None, name=None, trust=False):
    """A :class:`ModelSpec` whose architecture and arguments are read from the checkpoint itself
    (:mod:`gimsanet_arch.archs.detect`); ``arch`` / ``arch_args`` given too override what was read
    (e.g. ``--arch NAFNetLocal --arch-args '{train_size: [1, 3, 256, 256]}'``)."""
    from gimsanet_arch.archs.detect import UnknownArchitecture, detect
    from gimsanet_arch.training.checkpoint import extract_state_dict, load_checkpoint_file
    if arch:
        spec_from_arch(arch, weights, arch_args)  # an unknown --arch or bad --arch-args: said before any loading
    state = extract_state_dict(load_checkpoint_file(weights, trust=trust), weights, CHECKPOINT_PARAM_KEY)
    try:
        found, found_args = detect(state)
    except UnknownArchitecture as err:
        if arch:  # another architecture: its arguments come from --arch-args alone
            spec = spec_from_arch(arch, weights, arch_args, name=name, trust=trust)
            spec.detected = {}
            return spec
        raise OptionError(f'{weights}: {err}') from None
    if arch and SAME_WEIGHTS.get(arch, arch) != found:
        raise OptionError(f'{weights} holds {found} weights, not {arch}; leave out --arch to use them as {found}')
    given = parse_arch_args(arch_args) if isinstance(arch_args, (str, type(None))) else dict(arch_args)
    spec = spec_from_arch(arch or found, weights, {**found_args, **given}, name=name, trust=trust)
    spec.detected = found_args
    return spec


def spec_from_model_arg(text):
    """``NAME=ARCH_OPTIONS_YAML[:CHECKPOINT]``: the yml holds ``network_g`` (or is the network dict
    itself); no checkpoint means random initial weights."""
    if '=' not in text:
        raise ValueError(f'--model {text!r}: expected NAME=ARCH_OPTIONS_YAML[:CHECKPOINT]')
    name, rest = text.split('=', 1)
    yml, _, ckpt = rest.partition(':')
    opt = load_yaml(yml)
    if 'network_g' in opt:
        spec = spec_from_options(opt, name)
        spec.checkpoint = ckpt or None
        return spec
    if 'type' not in opt:
        raise ValueError(f'{yml}: needs network_g (or a network dict with type)')
    return ModelSpec(name, opt, ckpt or None)


def build(spec, device='cpu'):
    """Build (and load) the network of ``spec``; returns ``(net, multiple)``: the network in eval
    mode on ``device`` and the padding multiple its input needs."""
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY
    arch = spec.network_opt.get('type')
    if arch not in ARCH_REGISTRY:
        import difflib
        close = difflib.get_close_matches(str(arch), sorted(ARCH_REGISTRY.keys()), n=1, cutoff=0.5)
        hint = f' Did you mean "{close[0]}"?' if close else ''
        raise OptionError(f'{spec.name}: unknown network type "{arch}".{hint} Registered: '
                          f'{", ".join(sorted(ARCH_REGISTRY.keys()))}')
    try:
        net = build_network(deepcopy(spec.network_opt))
    except TypeError as err:  # an argument the architecture does not take
        raise OptionError(f'{spec.name}: cannot build {spec.network_opt.get("type")} with '
                          f'{ {k: v for k, v in spec.network_opt.items() if k != "type"} }: {err}') from None
    if spec.checkpoint:
        load_network_checked(net, spec.checkpoint, strict=spec.strict, param_key=spec.param_key, trust=spec.trust)
    multiple = int(spec.pad_multiple or pad_multiple(net))
    return net.to(device).eval(), max(multiple, 1)


def check_spec(spec):
    """Fail early, with the model's name, on what would otherwise fail only when its turn comes:
    an unregistered arch type or a missing checkpoint file."""
    import basicsr.archs  # noqa: F401  (fills ARCH_REGISTRY with BasicSR's own archs)
    from basicsr.utils.registry import ARCH_REGISTRY
    arch = spec.network_opt.get('type')
    if arch not in ARCH_REGISTRY:
        raise ValueError(f'{spec.name}: network type {arch!r} is not a registered architecture')
    if spec.checkpoint and not osp.isfile(spec.checkpoint):
        raise ValueError(f'{spec.name}: checkpoint not found: {spec.checkpoint}')
    return spec


def collect_specs(option_files=(), model_args=(), trust=False):
    """:class:`ModelSpec` of every ``--opt`` file and ``--model`` argument, checked
    (:func:`check_spec`), with names that differ (they key the result tables); ``trust``
    (``--trust-checkpoint``) lets every checkpoint load with full pickle."""
    specs = [spec_from_option_file(path) for path in option_files] + [spec_from_model_arg(m) for m in model_args]
    for spec in specs:
        spec.trust = spec.trust or trust
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f'model names must differ: {names}')
    return [check_spec(s) for s in specs]
