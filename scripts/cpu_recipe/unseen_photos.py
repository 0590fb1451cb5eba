"""The shipped default weights against BM3D on photos the project never trained on or chose by.

    python scripts/cpu_recipe/unseen_photos.py [--sigma 25] [--threads 2]

CBSD68 and BSD68 come from the same Berkeley collection as the training images. This benchmark asks
what a user sees on other photos: skimage.data's colour photos (astronaut, chelsea, coffee, rocket)
for the colour set and its gray ones (camera, moon, coins, page) for the gray set. Standard protocol
(docs/evaluation.md): noise seeded with 0 per image, not clipped; uint8 PSNR, no border crop; the
network blind and in fp32, BM3D (``pip install bm3d``) told the true σ. Prints one line per image and
the mean per set; about 2 CPU-minutes, most of it BM3D.
"""
import argparse
import importlib.util
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PHOTOS = {
    'GIMSANet-NoGrad_BlindColor_CBSD432': ('astronaut', 'chelsea', 'coffee', 'rocket'),
    'GIMSANet-NoGrad_BlindGray_BSD400': ('camera', 'moon', 'coins', 'page'),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sigma', type=float, default=25.0, help='noise level on the 0-255 scale (default 25)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch decides)')
    args = parser.parse_args(argv)
    if not 0 < args.sigma <= 100:
        parser.error(f'--sigma: expected a value in (0, 100], got {args.sigma}')
    return args


def main(argv=None):
    args = parse_args(argv)
    from skimage import data

    from gimsanet_arch.data.gaussian_noise_dataset import add_test_noise
    from gimsanet_arch.inference import evaluate, network, shipped_weights
    from results_table import bm3d_denoiser

    if args.threads:
        torch.set_num_threads(args.threads)
    if importlib.util.find_spec('bm3d') is None:  # the optional extra; checked before any compute
        raise SystemExit('error: unseen_photos.py needs the bm3d package: pip install bm3d')
    bm3d_run = bm3d_denoiser()
    print(f'sigma {args.sigma:g}, PSNR in dB (noisy input / GIMSANet / BM3D)')
    for name, photos in PHOTOS.items():
        net, multiple = network.build(shipped_weights.default_spec(name), 'cpu')
        scores = []
        for photo in photos:
            clean = getattr(data, photo)().astype(np.float32) / 255.
            clean = clean[:, :, None] if clean.ndim == 2 else clean
            noisy = add_test_noise(clean, args.sigma, seed=0)
            gt = evaluate.to_uint8(clean)
            denoised = evaluate.denoise_hwc(net, noisy, multiple, dtype=torch.float32)
            row = [evaluate.psnr_ssim(evaluate.to_uint8(img), gt)[0] for img in (noisy, denoised, bm3d_run(noisy, args.sigma))]
            scores.append(row)
            print(f'{name:36s} {photo:10s} {row[0]:6.2f} {row[1]:6.2f} {row[2]:6.2f}', flush=True)
        mean = np.mean(scores, axis=0)
        print(f'{name:36s} {"mean":10s} {mean[0]:6.2f} {mean[1]:6.2f} {mean[2]:6.2f}  GIMSANet - BM3D {mean[1] - mean[2]:+.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
