#!/usr/bin/env python
"""Compare denoisers side by side on the same test images and noise.

    python scripts/compare.py --opt options/test/Restormer/test_Restormer_GaussianColorDenoising_CBSD68.yml \
        --opt options/test/NAFNet/test_NAFNet-width32_GaussianColorDenoising_CBSD68.yml \
        --model mine=my_arch.yml:experiments/mine/models/net_g_latest.pth \
        --data datasets/CBSD68/test --sigmas 15 25 50 --out results/compare

``--opt`` takes a BasicSR option file (its ``network_g``, ``path.pretrain_network_g``,
``param_key_g`` and ``val.window_size``); ``--model NAME=ARCH_OPTIONS_YAML[:CHECKPOINT]`` a yml with
``network_g`` (or the network dict itself) and an optional checkpoint (none: random weights).
Prints one table (PSNR, SSIM, params, MACs per pixel, CPU ms per megapixel) and writes
``<out>/comparison.csv``, ``<out>/psnr_chart.png`` and ``<out>/crops.png``. Noise and metrics follow
docs/evaluation.md (seed 0 per image, RGB layout, uint8 PSNR/SSIM, crop 0).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--opt', action='append', default=[], help='BasicSR option file (repeatable)')
    p.add_argument('--model', action='append', default=[], help='NAME=ARCH_OPTIONS_YAML[:CHECKPOINT] (repeatable)')
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
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import gimsanet_arch  # noqa: F401  (shims + registries)
    from gimsanet_arch.utils import compare as cmp

    specs = [cmp.spec_from_option_file(o) for o in args.opt] + [cmp.spec_from_model_arg(m) for m in args.model]
    if not specs:
        print('compare.py: error: give at least one --opt or --model', file=sys.stderr)
        return 2
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        print(f'compare.py: error: model names must differ: {names}', file=sys.stderr)
        return 2
    in_ch = specs[0].in_ch
    box = cmp.center_box(args.data[0], args.crop_image, args.crop, in_ch)
    rows, crops = cmp.compare(specs, args.data, args.sigmas, device=args.device, mac_size=args.mac_size,
                              time_size=args.time_size, time_runs=args.time_runs, threads=args.threads,
                              keep_crops=(args.data[0], args.crop_image, box), progress=not args.no_progress)
    print(cmp.format_table(rows))
    os.makedirs(args.out, exist_ok=True)
    csv_path = cmp.write_csv(rows, os.path.join(args.out, 'comparison.csv'))
    backend = cmp.write_chart(rows, os.path.join(args.out, 'psnr_chart.png'))
    cmp.write_grid(crops, names, os.path.join(args.out, 'crops.png'), tile=args.tile)
    print(f'\nwrote {csv_path}, {os.path.join(args.out, "psnr_chart.png")} ({backend}), '
          f'{os.path.join(args.out, "crops.png")}')
    print('protocol: seed 0 per image, noise on the RGB/gray array, output clamped + uint8, '
          'PSNR/SSIM (BasicSR) crop 0; MACs = FLOPs/2 (torch FlopCounterMode); CPU ms per megapixel, fp32, batch 1')
    return 0


if __name__ == '__main__':
    sys.exit(main())
