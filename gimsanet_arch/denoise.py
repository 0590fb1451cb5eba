"""``python -m gimsanet_arch.denoise INPUTS -o OUT (-opt OPT | --arch NAME --weights CKPT)``: the
``gimsanet-denoise`` command (see :mod:`gimsanet_arch.commands.denoise`)."""
import sys

from gimsanet_arch.commands.denoise import main

if __name__ == '__main__':
    sys.exit(main())
