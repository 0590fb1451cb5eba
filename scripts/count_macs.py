#!/usr/bin/env python
"""Print GIMSANet's parameter count and MACs per pixel (FlopCounterMode; MAC = FLOP / 2).

"learned" counts the trainable convs only (the figure of docs/gimsanet-spec.md#size-and-cost);
"+ fixed" adds the fixed gradient convs.
Usage: python scripts/count_macs.py [--in-channels 3] [--grad-mode official] [--height 481 --width 321]
"""
import argparse

import gimsanet_arch  # noqa: F401  (compat shims + registries before basicsr)
from gimsanet_arch.archs.gimsanet_arch import GIMSANet
from gimsanet_arch.inference.cost import macs_per_pixel


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--in-channels', type=int, nargs='+', default=[3, 1])
    parser.add_argument('--grad-mode', default='official')
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=256)
    args = parser.parse_args(argv)
    for c in args.in_channels:
        model = GIMSANet(in_channels=c, grad_mode=args.grad_mode)
        params = sum(p.numel() for p in model.parameters())
        model.eval()
        learned = macs_per_pixel(model, c, size=32, exclude=model.grad_map)
        fixed = macs_per_pixel(model, c, size=32)
        gmac = learned * args.height * args.width / 1e9
        print(f'GIMSANet C={c} grad_mode={args.grad_mode}: params {params:,}, MACs/pixel learned {learned:,.0f}, '
              f'+ fixed {fixed:,.0f}; {gmac:.2f} GMAC (learned) at {args.height}x{args.width}')


if __name__ == '__main__':
    main()
