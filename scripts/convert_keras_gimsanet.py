#!/usr/bin/env python
"""Convert official Keras GIMSANet weights (HDF5 from model.save_weights) to a BasicSR checkpoint.

Usage: python scripts/convert_keras_gimsanet.py in.h5 out.pth [--in-channels 3]
The checkpoint is {'params': state_dict} for GIMSANet(in_channels=...) at its default (official) settings.
The logic lives in gimsanet_arch.archs.keras_convert; this is a thin command line around it.
"""
import argparse
import sys

import gimsanet_arch  # noqa: F401  (compat shims + registries before basicsr)
from gimsanet_arch.archs.keras_convert import KerasWeightsMismatchError, convert_keras_h5_to_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('h5', help='Keras 2 HDF5 weights file (model.save_weights("x.h5"))')
    parser.add_argument('out', help='output .pth (BasicSR checkpoint with key "params")')
    parser.add_argument('--in-channels', type=int, default=3, choices=(1, 3))
    args = parser.parse_args(argv)
    try:
        state = convert_keras_h5_to_checkpoint(args.h5, args.out, args.in_channels)
    except (KerasWeightsMismatchError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    n = sum(t.numel() for t in state.values())
    print(f'wrote {args.out}: {len(state)} tensors, {n:,} parameters (GIMSANet in_channels={args.in_channels})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
