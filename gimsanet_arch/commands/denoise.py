"""``gimsanet-denoise``: denoise your own photos with a trained model.

    gimsanet-denoise photo.png -o out/        # the shipped GIMSANet real-noise weights (camera noise)
    gimsanet-denoise photo.png --noise gaussian -o out/   # the shipped Gaussian weights (blind sigma 0-55)
    gimsanet-denoise photo.png --weights experiments/x/models/net_g_latest.pth -o out/   # arch read from the weights
    gimsanet-denoise 'shots/*.tif' -opt options/test/Restormer/test_Restormer_RealDenoising_SIDD.yml -o out/
    gimsanet-denoise photos/ --weights NAFNet-SIDD-width32.pth --tile 512 --tile-overlap 64 -o out/
    gimsanet-denoise photos/ --weights real_denoising.pth -o out/      # Restormer: read from the weights too

Inputs: files, folders (searched recursively; the sub-folders are kept in the output) or glob
patterns. 8- and 16-bit PNG, TIFF, JPEG, BMP, WebP; the output has the input's bit depth and
layout (gray stays gray, alpha is kept) and its extension (JPEG becomes PNG unless ``--ext jpg``).
Every output is written to a temporary name and renamed, so an existing file is never left
half-written. A file that cannot be read is reported by name and skipped; the others are still
written and the exit status is 1. Also ``python -m gimsanet_arch.denoise``.

Your files are safe: every argument is checked before the model loads; an output that would
replace a file this run did not make (one of the inputs, an earlier run's output, any other file in
``-o``), or an output folder inside an input folder, is refused unless ``--overwrite`` is given;
two inputs with one output name (``a.png`` and ``a.jpg``: a JPEG is written as PNG) are refused;
the output folder is never read as input. Photos are turned upright by their EXIF or TIFF
orientation, as viewers show them (``--keep-orientation``: as stored); the outputs carry no EXIF or
ICC metadata (pixels only, in the colour space they were stored in).
"""
import argparse
import math
import os.path as osp
import sys
import warnings

import torch
from tqdm import tqdm

from gimsanet_arch.commands.denoise_outputs import OutputRefused, collect_inputs, plan_outputs
from gimsanet_arch.inference import engine, network, photo, shipped_weights
from gimsanet_arch.inference.measure import resolve_device
from gimsanet_arch.options import OptionError
from gimsanet_arch.training.checkpoint import CheckpointError
from gimsanet_prep.images import IMAGE_EXTENSIONS, ImageReadError, write_image


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='gimsanet-denoise', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('inputs', nargs='+', help='image files, folders or glob patterns')
    p.add_argument('-o', '--output', default='results/denoised', help='output folder (default: %(default)s)')
    model = p.add_argument_group('model (one of -opt or --arch; neither: the shipped GIMSANet weights)')
    model.add_argument('-opt', help='BasicSR option file: its network_g, path.pretrain_network_g and checkpoint key '
                       '(path.param_key_g, else path.param_key, else params); with --weights, that checkpoint '
                       'instead of pretrain_network_g')
    model.add_argument('--arch', help='registered architecture name (GIMSANet, Restormer, NAFNet, ...)')
    model.add_argument('--weights', help='checkpoint (.pth or .safetensors; params_ema, then params, then a bare '
                       'state_dict); GIMSANet, NAFNet and Restormer are recognised from the weights, so --arch and '
                       '--arch-args are needed only for other architectures or to override')
    model.add_argument('--arch-args', help="constructor arguments for --arch: YAML/JSON text or file")
    model.add_argument('--onnx', metavar='FILE', help='an exported .onnx model (gimsanet-export), run with onnxruntime '
                       'on the CPU in float32: same tiling, padding, bit depths and errors as the PyTorch path')
    model.add_argument('--noise', choices=shipped_weights.NOISE_KINDS, default=None,
                       help='which shipped weights, when no model is given: real (camera noise, the default: '
                            'photos carry real noise) or gaussian (AWGN; the default with --sigma)')
    model.add_argument('--trust-checkpoint', action='store_true',
                       help='allow a checkpoint that needs full pickle (it can run code): only for files you trust')
    run = p.add_argument_group('running')
    run.add_argument('--tile', type=int, default=None, help='process in overlapping tiles of this size')
    run.add_argument('--tile-overlap', type=int, default=32, help='pixels shared by neighbouring tiles')
    run.add_argument('--self-ensemble', action='store_true', help='average over the 8 flips/rotations (x8 time)')
    run.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    run.add_argument('--dtype', default='auto', choices=engine.DTYPE_CHOICES,
                     help='auto (default): bf16 autocast where the device computes bf16 natively, else fp32; '
                          'fp32 forces float32')
    run.add_argument('--compile', action='store_true',
                     help='torch.compile the network (slow first image; on CPU it needs a C++ compiler)')
    run.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    out = p.add_argument_group('output')
    out.add_argument('--ext', default=None, help='output format (png, tif, jpg, ...); default: the input\'s')
    out.add_argument('--suffix', default='', help='appended to each output file name')
    out.add_argument('--overwrite', action='store_true',
                     help='allow outputs that replace existing files (inputs, earlier outputs, anything in -o), '
                          'and an output folder inside an input folder')
    out.add_argument('--keep-orientation', action='store_true',
                     help="keep the stored pixel orientation (default: apply the photo's EXIF or TIFF orientation)")
    out.add_argument('--sigma', type=float, default=None,
                     help='add seeded Gaussian noise of this sigma (0-255 scale) first, and report PSNR/SSIM '
                          'against the clean input')
    out.add_argument('--seed', type=int, default=0, help='seed of the --sigma noise (reset for every image)')
    out.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def check_arguments(args):
    """Every value given on the command line, before anything is read or written (ValueError)."""
    if args.tile is not None and args.tile <= 0:
        raise ValueError(f'--tile must be a positive number of pixels, got {args.tile}')
    if args.tile_overlap < 0:
        raise ValueError(f'--tile-overlap must be >= 0, got {args.tile_overlap}')
    if args.tile is not None and 2 * args.tile_overlap >= args.tile:
        raise ValueError(f'--tile-overlap {args.tile_overlap} leaves nothing of a --tile {args.tile}: '
                         'use an overlap under half the tile')
    if args.sigma is not None and not (math.isfinite(args.sigma) and args.sigma >= 0):
        raise ValueError(f'--sigma must be a finite noise level >= 0 (0-255 scale), got {args.sigma}')
    if args.threads is not None and args.threads < 1:
        raise ValueError(f'--threads must be >= 1, got {args.threads}')
    if args.ext is not None and '.' + args.ext.lower().lstrip('.') not in IMAGE_EXTENSIONS:
        raise ValueError(f'--ext {args.ext!r} is not an image format this command writes '
                         f'({", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)})')
    if any(c in args.suffix for c in ('/', '\\', '\0')):
        # appended to each file name: a separator (POSIX or Windows) would write into another folder, or
        # with .. outside -o; NUL ends the name
        raise ValueError(f'--suffix {args.suffix!r} must not contain a path separator: it is appended to each '
                         'file name inside the -o folder')
    if args.onnx and (args.opt or args.arch or args.weights or args.arch_args):
        raise ValueError('--onnx runs an exported model by itself: leave out -opt, --arch, --weights, --arch-args')
    if args.onnx and not osp.isfile(args.onnx):
        raise ValueError(f'--onnx: file not found: {args.onnx}')
    if args.onnx and args.device == 'cuda':
        raise ValueError('--onnx runs on the CPU (onnxruntime CPU provider): leave out --device cuda')
    if args.arch_args and not (args.arch or args.weights):
        raise ValueError('--arch-args needs --weights (or --arch NAME)')
    if args.noise and (args.onnx or args.opt or args.arch or args.weights):
        raise ValueError(f'--noise {args.noise} picks among the shipped weights: leave it out when you give '
                         'your own model (-opt, --weights, --arch or --onnx)')
    network.parse_arch_args(args.arch_args)  # its one-line OptionError, before any image is listed


def shipped_noise(args):
    """The noise the shipped weights are chosen for: --noise, else Gaussian with --sigma (the test
    noise is Gaussian), else real (photos carry camera noise); and why, for the note."""
    if args.noise:
        return args.noise, f'(--noise {args.noise})'
    if args.sigma is not None:
        return 'gaussian', '(for Gaussian noise: --sigma adds Gaussian test noise; --noise real to override)'
    return 'real', '(for real camera noise, the default for photos; --noise gaussian for AWGN)'


def load_onnx(path, threads=None):
    """``(model, in_ch, multiple, description)`` for an exported ``.onnx`` file; the model pads
    itself to its multiple (in the graph, or around the call), so the engine's multiple is 1."""
    try:
        from gimsanet_arch.export.onnx_runtime import OnnxModel
        model = OnnxModel(path, num_threads=threads)
    except ImportError:
        raise ValueError('--onnx needs onnxruntime: pip install "gimsanet_arch[export]"') from None
    except Exception as err:  # noqa: BLE001  (onnxruntime's own error types: one line naming the file)
        raise ValueError(f'--onnx: cannot load {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}') \
            from None
    return model, model.in_channels or 3, 1, f'ONNX {path} ({model.arch}, onnxruntime)'


def load_model(args, device, kind='color'):
    """``(net, in_ch, multiple, description)`` from ``--onnx``, ``-opt``, ``--weights`` (and
    ``--arch``), or (none given) the shipped default weights, announced with a note of what they
    were trained on; a PyTorch network prepared for the engine's fast path (channels_last weights,
    ``--compile``)."""
    if args.onnx:
        return load_onnx(args.onnx, args.threads)
    if args.opt and args.arch:
        raise ValueError('give the model with either -opt OPTION_FILE or --arch NAME --weights CKPT, not both')
    if args.opt:
        spec = network.spec_from_option_file(args.opt)  # the checkpoint key every command reads from -opt
        spec.checkpoint = args.weights or spec.checkpoint  # --weights wins over pretrain_network_g, as in export
        spec.trust = spec.trust or args.trust_checkpoint
    elif args.weights:  # the architecture and its arguments are read from the weights
        spec = network.spec_from_weights(args.weights, args.arch, args.arch_args, trust=args.trust_checkpoint)
        found = ', '.join(f'{k}={v}' for k, v in spec.detected.items())
        print(f'{args.weights}: {spec.network_opt["type"]} ({found})')
    elif args.arch:
        spec = network.spec_from_arch(args.arch, args.weights, args.arch_args, trust=args.trust_checkpoint)
    else:
        noise, why = shipped_noise(args)
        name = shipped_weights.default_name(kind, noise)
        spec = shipped_weights.default_spec(name)
        print(shipped_weights.note(name, why))
    if not spec.checkpoint:
        raise ValueError(f'{spec.name}: no weights given (--weights, or path.pretrain_network_g in the option file)')
    net, multiple = network.build(spec, device)
    net = engine.prepare_network(net, channels_last=True, compile=args.compile)
    return net, spec.in_ch, multiple, f'{spec.network_opt["type"]} from {spec.checkpoint}'


class ModelsByKind:
    """The model for a gray or a colour photo: the one the user named, for both; with no model given,
    the shipped weights of that kind (loaded once, when the first photo of the kind comes)."""

    def __init__(self, args, device):
        self.args, self.device, self.loaded = args, device, {}
        self.user_model = bool(args.onnx or args.opt or args.weights or args.arch)

    def get(self, kind):
        key = 'given' if self.user_model else shipped_weights.default_name(kind, shipped_noise(self.args)[0])
        if key not in self.loaded:
            self.loaded[key] = load_model(self.args, self.device, kind)
        return self.loaded[key]


def main(argv=None):
    args = parse_args(argv)
    try:
        check_arguments(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        device = resolve_device('cpu' if args.onnx else args.device)
        dtype = engine.resolve_dtype('fp32' if args.onnx else args.dtype, device)
        plan = plan_outputs(collect_inputs(args.inputs, args.output), args)
        items = plan.items
        models = ModelsByKind(args, device)
        net, in_ch, multiple, what = models.get('color')  # every check of the model before any image is read
    except (ValueError, OptionError, CheckpointError, ImageReadError) as err:
        print(f'gimsanet-denoise: error: {err}', file=sys.stderr)
        return 2
    print(f'{what} on {device} ({str(dtype).replace("torch.", "")}); {len(items)} image(s) -> {args.output}')
    failed, scores = [], []
    bar = tqdm(items, unit='image', disable=args.no_progress)
    for path, name in bar:
        bar.set_description(osp.basename(path))
        try:
            img = photo.read_photo(path, args.keep_orientation)
            net, in_ch, multiple, _ = models.get(photo.kind(img))
            h, w = img.shape[:2]
            n_tiles = engine.tile_count(h, w, args.tile, args.tile_overlap) if args.tile else 1
            tiles = tqdm(total=n_tiles, unit='tile', leave=False, disable=args.no_progress or n_tiles == 1)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                out, layout, score = photo.denoise_stored(
                    net, img, in_ch, multiple, sigma=args.sigma, seed=args.seed, tile=args.tile,
                    overlap=args.tile_overlap, ensemble=args.self_ensemble, dtype=dtype, device=device,
                    progress=tiles.update)
            tiles.close()
            if layout.conversion:
                tqdm.write(f'warning: {path}: {layout.conversion.replace("->", " image converted to ")} for this '
                           f'{in_ch}-channel model')
            for warning in caught:
                tqdm.write(f'warning: {path}: {warning.message}')
            write_image(plan.target(path, name, layout.dtype), out)
        except (ImageReadError, OutputRefused, OSError) as err:
            failed.append(path)
            tqdm.write(f'error: skipped {path}: {err}')
            continue
        if score:
            scores.append(score)
            tqdm.write(f'{path}: sigma {args.sigma:g}: PSNR {score["psnr"]:.2f} dB (noisy {score["psnr_noisy"]:.2f}), '
                       f'SSIM {score["ssim"]:.4f}')
    bar.close()
    if scores:
        mean = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
        print(f'mean over {len(scores)} image(s), sigma {args.sigma:g}: PSNR {mean["psnr"]:.2f} dB '
              f'(noisy input {mean["psnr_noisy"]:.2f}), SSIM {mean["ssim"]:.4f}')
    written = len(items) - len(failed)
    print(f'wrote {written} image(s) to {args.output}' + (f'; {len(failed)} skipped: {", ".join(failed)}'
                                                           if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
