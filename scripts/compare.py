#!/usr/bin/env python
"""Compare denoisers side by side: ``python scripts/compare.py --help`` (the command lives in
:mod:`gimsanet_arch.commands.compare`)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gimsanet_arch.commands.compare import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
