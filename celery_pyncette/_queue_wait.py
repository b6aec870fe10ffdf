"""Beat's extension of published batches' leases over their wait in the queue, off the dispatch
path.

Once a batch is published, its leases are extended to ``pyncette_delivery_timeout`` (see
:meth:`celery_pyncette._dispatch.Dispatcher._cover_queue_wait`). That store write does not decide
anything the dispatch needs next, so it runs on one background thread while beat claims and
publishes the next batch: the store does the work in parallel with beat's own. Writes run one at
a time, in the order the batches were sent; :meth:`QueueWaitCover.wait` (called at the end of
every dispatch) returns once all of them are done, so a tick never leaves one behind. An
extension that lands late is harmless: each is guarded by the claim's token, and a worker that
started the occurrence meanwhile has replaced it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class QueueWaitCover:
    """One background thread running the extensions handed to :meth:`submit`, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def submit(self, extend: Callable[[], None]) -> None:
        """Run ``extend`` in the background (it handles its own errors)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="pyncette-queue-wait")
            self._pending.append(self._pool.submit(extend))

    def wait(self) -> None:
        """Return once every extension submitted so far has run."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Wait for the pending extensions, then stop the thread."""
        self.wait()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
