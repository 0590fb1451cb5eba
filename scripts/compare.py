#!/usr/bin/env python
"""Compare denoisers side by side: ``python scripts/compare.py --help`` (the command lives in
:mod:`gimsanet_arch.commands.compare`)."""
import sys

from gimsanet_arch.commands.compare import main

if __name__ == '__main__':
    sys.exit(main())
