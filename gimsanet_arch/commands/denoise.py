"""``gimsanet-denoise``: denoise your own photos with a trained model.

    gimsanet-denoise photo.png -o out/        # the shipped GIMSANet weights (colour, blind sigma 0-55)
    gimsanet-denoise photo.png --arch GIMSANet --weights experiments/x/models/net_g_latest.pth -o out/
    gimsanet-denoise 'shots/*.tif' -opt options/test/Restormer/test_Restormer_RealDenoising_SIDD.yml -o out/
    gimsanet-denoise photos/ --arch NAFNet --arch-args '{width: 32, enc_blk_nums: [2,2,4,8], middle_blk_num: 12,
        dec_blk_nums: [2,2,2,2]}' --weights NAFNet-SIDD-width32.pth --tile 512 --tile-overlap 64 -o out/

Inputs: files, folders (searched recursively; the sub-folders are kept in the output) or glob
patterns. 8- and 16-bit PNG, TIFF, JPEG, BMP, WebP; the output has the input's bit depth and
layout (gray stays gray, alpha is kept) and its extension (JPEG becomes PNG unless ``--ext jpg``).
Every output is written to a temporary name and renamed, so an existing file is never left
half-written. A file that cannot be read is reported by name and skipped; the others are still
written and the exit status is 1. Also ``python -m gimsanet_arch.denoise``.
"""
import argparse
import glob
import os
import os.path as osp
import sys
import warnings

import torch
from tqdm import tqdm

from gimsanet_arch.inference import engine, network, photo, shipped_weights
from gimsanet_arch.inference.measure import resolve_device
from gimsanet_arch.options import OptionError
from gimsanet_arch.training.checkpoint import CheckpointError
from gimsanet_prep.images import ImageReadError, is_image_file, list_images, read_image, write_image

LOSSLESS = {'.png', '.tif', '.tiff'}  # the formats that also hold 16-bit images


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='gimsanet-denoise', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('inputs', nargs='+', help='image files, folders or glob patterns')
    p.add_argument('-o', '--output', default='results/denoised', help='output folder (default: %(default)s)')
    model = p.add_argument_group('model (one of -opt or --arch; neither: the shipped GIMSANet weights)')
    model.add_argument('-opt', help='BasicSR option file: its network_g and path.pretrain_network_g')
    model.add_argument('--arch', help='registered architecture name (GIMSANet, Restormer, NAFNet, ...)')
    model.add_argument('--weights', help='checkpoint for --arch (params_ema, then params, then a bare state_dict)')
    model.add_argument('--arch-args', help="constructor arguments for --arch: YAML/JSON text or file")
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
    out.add_argument('--sigma', type=float, default=None,
                     help='add seeded Gaussian noise of this sigma (0-255 scale) first, and report PSNR/SSIM '
                          'against the clean input')
    out.add_argument('--seed', type=int, default=0, help='seed of the --sigma noise (reset for every image)')
    out.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def collect_inputs(inputs):
    """``[(path, output name without extension)]`` for files, folders (recursive, relative names
    kept) and glob patterns; raises ValueError for an input that matches nothing, or for two inputs
    that would write the same output."""
    found = []
    for item in inputs:
        if osp.isdir(item):
            found += [(p, osp.splitext(osp.relpath(p, item))[0]) for p in list_images(item)]
        elif osp.isfile(item):
            found.append((item, osp.splitext(osp.basename(item))[0]))
        else:
            matches = sorted(p for p in glob.glob(item, recursive=True) if osp.isfile(p) and is_image_file(p))
            if not matches:
                raise ValueError(f'no such image file, folder or matching pattern: {item}')
            found += [(p, osp.splitext(osp.basename(p))[0]) for p in matches]
    names = {}
    for path, name in found:
        if name in names and names[name] != path:
            raise ValueError(f'{names[name]} and {path} would both be written as {name}; denoise them separately')
        names[name] = path
    return list(dict.fromkeys(found))


def output_path(folder, name, input_path, ext, suffix, dtype):
    """Where the output goes: the input's extension (JPEG -> PNG, and PNG for 16-bit images in a
    format without 16 bits) unless ``ext`` says otherwise."""
    in_ext = osp.splitext(input_path)[1].lower()
    if ext:
        out_ext = '.' + ext.lower().lstrip('.')
    else:
        out_ext = '.png' if in_ext in ('.jpg', '.jpeg') else in_ext
    if dtype.itemsize == 2 and out_ext not in LOSSLESS:
        out_ext = '.png'
    return osp.join(folder, name + suffix + out_ext)


def load_model(args, device):
    """``(net, in_ch, multiple, description)`` from ``-opt``, ``--arch``/``--weights``, or (neither
    given) the shipped default weights, announced with a note of what they were trained on; the
    network prepared for the engine's fast path (channels_last weights, ``--compile``)."""
    if args.opt and args.arch:
        raise ValueError('give the model with either -opt OPTION_FILE or --arch NAME --weights CKPT, not both')
    if args.weights and not args.arch:
        raise ValueError('--weights needs --arch NAME (the architecture the checkpoint belongs to)')
    if args.opt:
        spec = network.spec_from_option_file(args.opt, default_param_key='params_ema')
    elif args.arch:
        spec = network.spec_from_arch(args.arch, args.weights, args.arch_args)
    else:
        spec = shipped_weights.default_spec()
        print(shipped_weights.note())
    if not spec.checkpoint:
        raise ValueError(f'{spec.name}: no weights given (--weights, or path.pretrain_network_g in the option file)')
    net, multiple = network.build(spec, device)
    net = engine.prepare_network(net, channels_last=True, compile=args.compile)
    return net, spec.in_ch, multiple, f'{spec.network_opt["type"]} from {spec.checkpoint}'


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        dtype = engine.resolve_dtype(args.dtype, device)
        items = collect_inputs(args.inputs)
        net, in_ch, multiple, what = load_model(args, device)
    except (ValueError, OptionError, CheckpointError, ImageReadError) as err:
        print(f'gimsanet-denoise: error: {err}', file=sys.stderr)
        return 2
    print(f'{what} on {device} ({str(dtype).replace("torch.", "")}); {len(items)} image(s) -> {args.output}')
    failed, scores = [], []
    bar = tqdm(items, unit='image', disable=args.no_progress)
    for path, name in bar:
        bar.set_description(osp.basename(path))
        try:
            img = read_image(path)
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
            target = output_path(args.output, name, path, args.ext, args.suffix, layout.dtype)
            write_image(target, out)
        except (ImageReadError, OSError) as err:
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
