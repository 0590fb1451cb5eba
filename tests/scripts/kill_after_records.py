"""Run a preparation script and SIGKILL it once N records reached every LMDB it writes: a crash
in the middle of writing, for the tests of interrupted builds.

    python tests/scripts/kill_after_records.py N scripts/data_preparation/sidd.py [args...]

The records written so far are flushed to the ``*.lmdb.partial`` databases first, so the next
run finds a leftover with real content to remove.
"""
import os
import runpy
import signal
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from gimsanet_prep import lmdb_writer  # noqa: E402


def kill_after(n_records):
    """Patch :class:`LmdbSink` so the process kills itself after ``n_records`` records per sink."""
    sinks = []
    original_init, original_add = lmdb_writer.LmdbSink.__init__, lmdb_writer.LmdbSink.add

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.records_added = 0
        sinks.append(self)

    def add(self, *args, **kwargs):
        original_add(self, *args, **kwargs)
        self.records_added += 1
        if all(sink.records_added >= n_records for sink in sinks):  # the record reached every output
            for sink in sinks:
                sink.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    lmdb_writer.LmdbSink.__init__, lmdb_writer.LmdbSink.add = init, add


if __name__ == '__main__':
    kill_after(int(sys.argv[1]))
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))  # as `python script.py` would
    runpy.run_path(script, run_name='__main__')
