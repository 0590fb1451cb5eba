"""``python -m gimsanet_arch.train -opt OPT.yml`` — same as ``basicsr train``."""
import sys

from gimsanet_arch.commands.basicsr_cli import run


def main():
    return run('train', sys.argv[1:], prog='python -m gimsanet_arch.train')


if __name__ == '__main__':
    sys.exit(main())
