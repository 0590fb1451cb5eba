"""``python -m benchmarks.perf``: the performance report (see :mod:`benchmarks.perf.command`)."""
import sys

from benchmarks.perf.command import main

sys.exit(main())
