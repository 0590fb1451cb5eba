"""``python tests/slow_save_cli.py SECONDS <basicsr args>``: the ``basicsr`` command with every
checkpoint save held for SECONDS between writing the temp file and renaming it, so a test can
kill a run in the middle of a save (a test-side patch; production code has no such hook)."""
import sys
import time

import gimsanet_arch  # noqa: F401  (shims + registries)
from gimsanet_arch.commands import basicsr_cli
from gimsanet_arch.training import checkpoint


def main():
    delay, argv = float(sys.argv[1]), sys.argv[2:]
    publish = checkpoint._publish

    def slow_publish(tmp, path):
        time.sleep(delay)
        publish(tmp, path)

    checkpoint._publish = slow_publish
    return basicsr_cli.main(argv)


if __name__ == '__main__':
    sys.exit(main())
