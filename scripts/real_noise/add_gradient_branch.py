#!/usr/bin/env python
"""Write a GIMSANet checkpoint with a gradient branch that computes exactly what the given
no-branch weights compute (gimsanet_arch/archs/gradient_transplant.py), as the starting point of a
fine-tune with the branch. The real-noise runs with and without the branch both start from the
shipped Gaussian colour weights; this gives the branch run the same start.

    python scripts/real_noise/add_gradient_branch.py                    # the default in and out below
    python scripts/real_noise/add_gradient_branch.py --weights my.pth --out experiments/pretrained_models/mine_grad.pth

The output is a BasicSR checkpoint (``{'params': ...}``) for ``grad_mode`` official, sobel_luma or
sobel_color (the map has no weights, so the same file serves all three). An existing --out is kept
unless --overwrite.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_IN = 'gimsanet_arch/weights/GIMSANet-NoGrad_BlindColor_CBSD432.safetensors'
DEFAULT_OUT = 'experiments/pretrained_models/GIMSANet-GradInit_BlindColor_CBSD432.pth'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default=osp.join(ROOT, DEFAULT_IN), help='no-branch GIMSANet weights (.pth or .safetensors)')
    p.add_argument('--param-key', default='params', help='weights inside a BasicSR checkpoint (params or params_ema)')
    p.add_argument('--out', default=osp.join(ROOT, DEFAULT_OUT), help='checkpoint to write')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    args = p.parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'{args.out} exists: kept (pass --overwrite to replace it)')
        return 0
    import torch
    from gimsanet_arch.archs.gradient_transplant import add_gradient_branch
    from gimsanet_arch.training.checkpoint import CheckpointError, extract_state_dict, load_checkpoint_file
    try:
        state = extract_state_dict(load_checkpoint_file(args.weights), args.weights, args.param_key)
        grown = add_gradient_branch(state)
    except (CheckpointError, ValueError) as err:
        print(f'error: {args.weights}: {err}', file=sys.stderr)
        return 2
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp'
    torch.save({'params': grown}, tmp)
    os.replace(tmp, args.out)
    print(f'wrote {args.out} (from {args.weights}, gradient branch added with zero weights)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
