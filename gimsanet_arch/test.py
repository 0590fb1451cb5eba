"""``python -m gimsanet_arch.test -opt OPT.yml`` — same as ``basicsr test``."""
import sys

from gimsanet_arch.commands.basicsr_cli import run


def main():
    return run('test', sys.argv[1:], prog='python -m gimsanet_arch.test')


if __name__ == '__main__':
    sys.exit(main())
