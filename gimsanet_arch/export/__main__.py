"""``python -m gimsanet_arch.export``: the same as the ``gimsanet-export`` command."""
import sys

from gimsanet_arch.export.cli import main

sys.exit(main())
