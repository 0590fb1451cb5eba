"""``gimsanet-export``: export a trained network to ONNX and TorchScript and check each file.

    gimsanet-export --arch GIMSANet --weights net_g.pth [--arch-args '{in_channels: 1}'] --out-dir exported
    gimsanet-export -opt options/test/Restormer/test_Restormer_GaussianColorDenoising_CBSD68.yml

Each file is run (onnxruntime / torch.jit.load) on a random input of another, non-square size than the
export example and compared with the eager network; the max abs difference is printed, and a
difference above ``--tol`` (or a file that does not run) ends the command with exit status 1 and one
error line. Bad arguments, options or checkpoints: exit status 2, one line.
"""
import argparse
import os.path as osp
import sys

from gimsanet_arch.export.check import (ExportCheckError, check_input, eager_reference, first_line, max_abs_diff,
                                        require_within)


def _size(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HxW, e.g. 45x37, got {text!r}') from None
    return h, w


def build_parser():
    p = argparse.ArgumentParser(prog='gimsanet-export', description='Export a network to ONNX and TorchScript; '
                                'check each file against the eager network at a new image size.')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('-opt', '--opt', help='option file: network_g, path.pretrain_network_g and the checkpoint key '
                     '(path.param_key_g, else path.param_key, else params: as every command reads an option file)')
    src.add_argument('--arch', help='registered arch name (GIMSANet, Restormer, NAFNet, ...)')
    p.add_argument('--arch-args', help='constructor arguments, inline YAML/JSON or a .yml/.json file (with --arch)')
    p.add_argument('--weights', help='checkpoint (BasicSR .pth, official release file or bare state_dict); '
                   'overrides the option file\'s path.pretrain_network_g')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow a checkpoint that needs full pickle (it can run code): only for files you trust')
    p.add_argument('--param-key', help='checkpoint key to load first (default: params_ema with --arch; with -opt '
                   'the option file\'s, see -opt); params, params_ema and a bare state_dict are tried next')
    p.add_argument('--out-dir', default='exported', help='output folder (default: exported)')
    p.add_argument('--name', help='file name stem (default: the checkpoint\'s)')
    p.add_argument('--formats', default='onnx,torchscript',
                   help='comma list of onnx, torchscript, safetensors (the weights alone; default: onnx,torchscript)')
    p.add_argument('--opset', type=int, default=18, help='ONNX opset (default 18; written into the file name)')
    p.add_argument('--onnx-exporter', choices=('dynamo', 'torchscript'), default='dynamo',
                   help='torch.onnx exporter: dynamo (torch.export, default) or the older tracing one')
    p.add_argument('--torchscript-method', choices=('trace', 'script'), default='trace',
                   help='torch.jit.trace (default, any arch) or torch.jit.script (GIMSANet)')
    p.add_argument('--pad-multiple', type=int, help='pad H and W to this multiple inside the exported graph '
                   '(default: the arch\'s requirement, e.g. 8 for Restormer; 1 turns it off)')
    p.add_argument('--example-size', type=_size, default=(64, 64), help='HxW of the export example (64x64)')
    p.add_argument('--check-size', type=_size, default=(45, 37), help='HxW of the check input (45x37)')
    p.add_argument('--tol', type=float, default=1e-4, help='max abs difference allowed vs eager (1e-4, fp32)')
    p.add_argument('--debug', action='store_true', help='show tracebacks instead of one-line errors')
    return p


def model_spec(args):
    """The :class:`~gimsanet_arch.inference.network.ModelSpec` to export, read as every command reads
    a model: an option file (``network_g``, ``path.pretrain_network_g``, the checkpoint key of
    :func:`~gimsanet_arch.inference.network.option_param_key`, ``val.pad_multiple`` / ``window_size``)
    or ``--arch`` / ``--arch-args`` (a checkpoint's ``params_ema`` first). ``--weights``,
    ``--param-key`` and ``--pad-multiple`` override. Always loaded strictly: a partly loaded network
    would make a wrong file. Checked before anything is built."""
    from gimsanet_arch.inference import network
    from gimsanet_arch.options import OptionError

    if args.opt:
        if args.arch_args:
            raise ValueError('--arch-args goes with --arch; with -opt the arguments come from network_g')
        spec = network.spec_from_option_file(args.opt)
    else:
        spec = network.spec_from_arch(args.arch, arch_args=args.arch_args)
    spec.checkpoint = args.weights or spec.checkpoint
    spec.param_key = args.param_key or spec.param_key
    spec.pad_multiple = args.pad_multiple or spec.pad_multiple
    spec.trust = spec.trust or args.trust_checkpoint
    spec.strict = True
    if not spec.checkpoint:
        raise OptionError('no weights: pass --weights CKPT (or set path.pretrain_network_g in the option file)')
    return network.check_spec(spec)


def export_all(args):
    """Export and check every requested format, printing one line per file; raises on failure."""
    from gimsanet_arch.inference import network

    formats = [f.strip() for f in args.formats.split(',') if f.strip()]
    unknown = set(formats) - set(EXPORTERS)
    if unknown or not formats:
        raise ValueError(f'--formats takes {", ".join(EXPORTERS)}, got {args.formats!r}')
    spec = model_spec(args)
    net, multiple = network.build(spec)  # on the CPU, in eval mode
    arch = spec.network_opt['type']
    arch_args = {k: v for k, v in spec.network_opt.items() if k != 'type'}
    channels = spec.in_ch
    x = check_input(channels, args.check_size, args.example_size)
    print(f'{arch} (in_channels {channels}, pad multiple {multiple}'
          f'{", padded inside the graph" if multiple > 1 else ""}) from {spec.checkpoint}')
    expected = eager_reference(net, x, multiple)  # before exporting: a size the net cannot take fails fast
    name = args.name or osp.splitext(osp.basename(spec.checkpoint))[0]
    for fmt in formats:
        exporter = EXPORTERS[fmt]
        try:
            path, run, label = exporter(net, args, name, multiple, arch_args)
        except ImportError:
            raise
        except Exception as err:  # noqa: BLE001  (exporter internals: one line, --debug for the traceback)
            raise ExportCheckError(f'{fmt} export failed: {type(err).__name__}: {first_line(err)}') from err
        diff = max_abs_diff(run, expected, x, label=f'{label} {path}')
        print(f'{label}: {path}  max abs diff vs eager at {"x".join(map(str, x.shape))}: {diff:.3g} '
              f'(tol {args.tol:g})')
        require_within(diff, args.tol, f'{label} {path}', x)
    return 0


def _export_onnx(net, args, name, multiple, arch_args):
    from gimsanet_arch.export.onnx_export import export_onnx
    from gimsanet_arch.export.onnx_runtime import OnnxModel

    path = export_onnx(net, args.out_dir, name, multiple, opset=args.opset, example_hw=args.example_size,
                       exporter=args.onnx_exporter, arch_args=arch_args)
    return path, OnnxModel(path), f'onnx ({args.onnx_exporter} exporter)'


def _export_safetensors(net, args, name, multiple, arch_args):
    """The weights alone, as ``<name>.safetensors`` (``params``; the architecture is read back from
    the keys, see ``gimsanet_arch.archs.detect``); checked by loading them into a fresh network."""
    import copy
    from gimsanet_arch.training.safetensors_io import load_safetensors_checkpoint, save_safetensors_checkpoint

    path = save_safetensors_checkpoint({'params': net.state_dict()}, osp.join(args.out_dir, name + '.safetensors'),
                                       metadata={'arch': type(net).__name__})
    reloaded = copy.deepcopy(net)
    reloaded.load_state_dict(load_safetensors_checkpoint(path)['params'], strict=True)
    return path, reloaded.eval(), 'safetensors'


def _export_torchscript(net, args, name, multiple, arch_args):
    from gimsanet_arch.export.torchscript_export import export_torchscript, load_torchscript

    path, tracer_warnings = export_torchscript(net, args.out_dir, name, multiple, example_hw=args.example_size,
                                               method=args.torchscript_method, arch_args=arch_args)
    for warning in tracer_warnings:
        print(f'note: the trace froze a Python value ({warning})')
    return path, load_torchscript(path)[0], f'torchscript ({args.torchscript_method})'


def main(argv=None):
    """Console entry point; returns the exit status (0 ok, 1 export or check failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    from gimsanet_arch.training.checkpoint import CheckpointError
    from gimsanet_arch.options import OptionError

    try:
        return export_all(args)
    except (ExportCheckError, ImportError, OptionError, CheckpointError, ValueError, OSError) as err:
        if args.debug:
            raise
        message = ' '.join(str(err).split())
        if isinstance(err, ImportError):
            message += ' (the export needs the extra: pip install "gimsanet_arch[export]")'
        print(f'gimsanet-export: error: {message}', file=sys.stderr)
        return 1 if isinstance(err, (ExportCheckError, ImportError)) else 2


EXPORTERS = {'onnx': _export_onnx, 'torchscript': _export_torchscript, 'safetensors': _export_safetensors}
