"""One rank's error, seen by every rank of a distributed run.

When one rank stops on bad input (a corrupt image in its shard, a file only its node has), the
others are usually blocked in a collective (DDP's gradient all-reduce) waiting for it: they would
sit there until the collective timeout (30 minutes by default), and rank 0 would leave its
half-created run folder behind. Instead the failing rank posts its one-line error in the process
group's key-value store; a watcher thread on every rank polls the store, and on seeing the line it
prints the same line, runs the rank's clean-up (rank 0: undo the run folder) and ends the process
with exit code 2, whatever its main thread is blocked in. The failing rank waits (bounded) until
every rank has done so, then exits itself, so the launcher sees no rank it has to kill.

Only the errors the CLI reports in one line are shared; a crash (traceback, SIGKILL) is left to
the launcher, which stops the group (and restarts it under ``torchrun --max-restarts``).
"""
import os
import sys
import threading
import time

import torch.distributed as dist

POLL_S = 0.5  # how often each rank looks for a posted error
ACK_TIMEOUT_S = 30  # how long the failing rank waits for the others to stop


def _group_store():
    """The default process group's store, namespaced per launcher attempt (None when there is none)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    try:
        from torch.distributed.distributed_c10d import _get_default_store
        store = _get_default_store()
    except (ImportError, RuntimeError, ValueError):
        return None
    attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
    return dist.PrefixStore(f'gimsanet_rank_errors/{attempt}/', store)


class RankErrors:
    """Share a one-line error among the ranks (see module doc). Single-process runs: no-ops.

    ``cleanup`` is called on the rank that did not fail itself before it exits (rank 0 uses it to
    remove the run folder it created); ``stream`` receives the line.
    """

    def __init__(self, cleanup=None, stream=None):
        self.cleanup = cleanup
        self.stream = stream
        self._store = None
        self._world_size = 1
        self._lock = threading.Lock()
        self._handled = False
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start watching (call once the process group exists)."""
        self._store = _group_store()
        if self._store is None:
            return
        self._world_size = dist.get_world_size()
        self._thread = threading.Thread(target=self._watch, name='gimsanet-rank-errors', daemon=True)
        self._thread.start()

    def stop(self):
        """Stop watching, and wait for the watcher to leave the store: a thread still inside a store
        call when the interpreter exits aborts the process ("terminate called without an active
        exception"), which the launcher then reports as a failed rank."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=4 * POLL_S)

    def barrier(self):
        """Wait until every rank got here. Called after the up-front checks: when one rank's checks
        failed, the others wait here (having created nothing) until the watcher stops them."""
        if self._store is not None:
            dist.barrier()

    def _claim(self):
        """True for the first caller only: one handler per process (main thread or watcher)."""
        with self._lock:
            if self._handled:
                return False
            self._handled = True
            return True

    def _mark_done(self):
        try:
            self._store.add('done', 1)
        except Exception:  # noqa: BLE001 - the store may be gone: nothing left to tell
            pass

    def report(self, line):
        """This rank failed with ``line`` (already printed): post it and wait, at most
        :data:`ACK_TIMEOUT_S`, until every other rank has printed it and stopped."""
        if self._store is None or not self._claim():
            return
        self.stop()
        try:
            self._store.compare_set('line', '', line)  # the first rank to fail is the one quoted
            self._store.add('done', 1)
            deadline = time.monotonic() + ACK_TIMEOUT_S
            while self._store.add('done', 0) < self._world_size and time.monotonic() < deadline:
                time.sleep(0.05)
        except Exception:  # noqa: BLE001 - a broken store must not hide this rank's own error
            pass

    def posted(self):
        """The line another rank posted, or None."""
        if self._store is None:
            return None
        try:
            if self._store.check(['line']):
                return self._store.get('line').decode('utf-8', 'replace')
        except Exception:  # noqa: BLE001 - store gone (the run is ending)
            pass
        return None

    def take_posted(self, wait_s=2 * POLL_S):
        """For the main thread, after an unexpected exception (e.g. a collective broken by the
        failing rank's exit): the posted line, handled here (printed, cleaned up, counted) when the
        watcher has not done so; None when no rank posted one within ``wait_s``."""
        if self._store is None:  # single process: nobody else to hear from
            return None
        deadline = time.monotonic() + wait_s
        line = self.posted()
        while line is None and time.monotonic() < deadline:
            time.sleep(0.05)
            line = self.posted()
        if line is None:
            return None
        if not self._claim():
            time.sleep(ACK_TIMEOUT_S)  # the watcher is handling it and will end the process
            return line
        self._stop_like_the_failing_rank(line, exit_now=False)
        return line

    def _stop_like_the_failing_rank(self, line, exit_now):
        print(line, file=self.stream or sys.stderr, flush=True)
        if self.cleanup is not None:
            try:
                self.cleanup()
            except Exception:  # noqa: BLE001 - the error line is what matters
                pass
        self._mark_done()
        if exit_now:
            os._exit(2)  # the main thread may be blocked in a collective for the next 30 minutes

    def _watch(self):
        while not self._stop.wait(POLL_S):
            line = self.posted()
            if line is not None and self._claim():
                self._stop_like_the_failing_rank(line, exit_now=True)
                return
