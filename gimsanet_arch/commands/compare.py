"""Compare denoisers side by side on the same test images and noise.

    python -m gimsanet_arch.commands.compare \\
        --opt options/test/Restormer/test_Restormer_GaussianColorDenoising_CBSD68.yml \\
        --opt options/test/NAFNet/test_NAFNet-width32_GaussianColorDenoising_CBSD68.yml \\
        --model mine=my_arch.yml:experiments/mine/models/net_g_latest.pth \\
        --data datasets/CBSD68/test --sigmas 15 25 50 --out results/compare

(``scripts/compare.py`` is the same command; ``gimsanet-benchmark --data ... --sigmas ...`` scores
models with the same code, :func:`gimsanet_arch.inference.evaluate.score`, next to its speed and
memory figures.) ``--opt`` takes a BasicSR option file (its
``network_g``, ``path.pretrain_network_g``, the checkpoint key of
:func:`gimsanet_arch.inference.network.option_param_key` and ``val.window_size``); ``--model
NAME=ARCH_OPTIONS_YAML[:CHECKPOINT]`` a yml with ``network_g`` (or the network dict itself) and an
optional checkpoint (none: random weights). Prints one table (PSNR, SSIM, params, MACs per pixel,
CPU ms per megapixel) and writes ``<out>/comparison.csv``, ``<out>/psnr_chart.png`` (with the
``plots`` extra: matplotlib) and ``<out>/crops.png``. Noise and metrics: docs/evaluation.md
(standard AWGN protocol).
"""
import argparse
import os
import sys

from gimsanet_arch.options import OptionError


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='compare', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--opt', action='append', default=[], help='BasicSR option file (repeatable)')
    p.add_argument('--model', action='append', default=[], help='NAME=ARCH_OPTIONS_YAML[:CHECKPOINT] (repeatable)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow checkpoints that need full pickle (they can run code): only files you trust')
    p.add_argument('--data', nargs='+', required=True, help='folder(s) of clean test images')
    p.add_argument('--sigmas', nargs='+', type=float, default=[15, 25, 50])
    p.add_argument('--out', default='results/compare', help='folder for the CSV and PNGs')
    p.add_argument('--crop', type=int, default=96, help='size of the crop shown in the grid')
    p.add_argument('--crop-image', type=int, default=0, help='index of the image (first --data folder) for the grid')
    p.add_argument('--tile', type=int, default=160, help='pixel size of each grid tile')
    p.add_argument('--mac-size', type=int, default=64, help='input side for the MAC count')
    p.add_argument('--time-size', type=int, default=256, help='input side for the CPU timing')
    p.add_argument('--time-runs', type=int, default=3)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', default='auto', choices=['auto', 'fp32', 'bf16'],
                   help='auto (default): bf16 autocast where the device computes bf16 natively, else fp32')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from gimsanet_arch.commands import report
    from gimsanet_arch.inference import evaluate, network

    try:
        specs = network.collect_specs(args.opt, args.model, trust=args.trust_checkpoint)
    except (ValueError, OptionError) as err:
        print(f'compare: error: {err}', file=sys.stderr)
        return 2
    if not specs:
        print('compare: error: give at least one --opt or --model', file=sys.stderr)
        return 2
    names = [s.name for s in specs]
    rows, crops = evaluate.evaluate(specs, args.data, args.sigmas, device=args.device, mac_size=args.mac_size,
                                    time_size=args.time_size, time_runs=args.time_runs, threads=args.threads,
                                    keep_crop=(args.data[0], args.crop_image, args.crop),
                                    progress=not args.no_progress, dtype=args.dtype)
    print(report.format_table(rows))
    os.makedirs(args.out, exist_ok=True)
    csv_path = report.write_csv(rows, os.path.join(args.out, 'comparison.csv'),
                                [c[0] for c in report.COLUMNS] + ['images'])
    chart = report.write_psnr_chart(rows, os.path.join(args.out, 'psnr_chart.png'))
    grid = os.path.join(args.out, 'crops.png')
    report.write_grid(crops, names, grid, tile=args.tile)
    print(f'\nwrote {csv_path}, {grid}, ' + (chart or 'no psnr_chart.png (pip install "gimsanet_arch[plots]")'))
    from gimsanet_arch.inference.engine import resolve_dtype
    dtype = str(resolve_dtype(args.dtype, args.device)).replace('torch.', '')
    print('protocol: seed 0 per image, noise on the RGB/gray array, output clamped + uint8, '
          f'PSNR/SSIM (BasicSR) crop 0; MACs = FLOPs/2 (torch FlopCounterMode); ms per megapixel, {dtype}, batch 1')
    return 0


if __name__ == '__main__':
    sys.exit(main())
