"""Every Celery signal receiver of celery-pyncette, connected by :func:`connect` (once).

- ``task_prerun`` / ``task_postrun``: plain Celery tasks scheduled through ``beat_schedule`` get
  the lease and outcome handling of pyncette tasks; signals can commit but cannot skip a run
  (Celery swallows exceptions raised by signal receivers).
- ``task_revoked`` (``expired=True``): a message received after its expiry settles its
  occurrence as ``"expired"`` (:mod:`celery_pyncette.worker._expiry`).
- ``worker_init``: import the store's module before the pool forks (nothing connects there).
- ``worker_process_init`` / ``worker_ready``: open the store in the background, in each prefork
  pool process, or once a solo/threads worker is ready.
- ``worker_process_shutdown`` / ``worker_shutdown``: tear down this process's fixtures.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import weakref
from typing import Any

import billiard.process
from celery import signals

from celery_pyncette import _runtime
from celery_pyncette import _tracing as tracing
from celery_pyncette._context import Context, reset_current, set_current
from celery_pyncette._occurrence import occurrence_of, update_header
from celery_pyncette.worker._execution import CONTROL_FLOW, Execution
from celery_pyncette.worker._expiry import task_expired
from celery_pyncette.worker._task import PyncetteTaskMixin

logger = logging.getLogger("celery_pyncette.worker")

_connected = False
_connect_lock = threading.Lock()


def connect() -> None:
    """Connect the receivers to Celery's signals; later calls do nothing."""
    global _connected
    with _connect_lock:
        if _connected:
            return
        signals.task_prerun.connect(_plain_task_started, weak=False)
        signals.task_postrun.connect(_plain_task_finished, weak=False)
        signals.task_revoked.connect(task_expired, weak=False)
        signals.worker_init.connect(_worker_starting, weak=False)
        signals.worker_process_init.connect(_pool_process_starting, weak=False)
        signals.worker_ready.connect(_worker_ready, weak=False)
        signals.worker_process_shutdown.connect(_process_ending, weak=False)
        signals.worker_shutdown.connect(_process_ending, weak=False)
        _connected = True


# --- plain Celery tasks scheduled through beat_schedule ------------------------------------------

_PLAIN_EXECUTIONS: dict[
    str, tuple[Execution, contextvars.Token[Context | None], tracing.ExecutionSpan]
] = {}


def _plain_task_started(sender: Any = None, task_id: str = "", task: Any = None, **_: Any) -> None:
    if task is None or isinstance(task, PyncetteTaskMixin):
        return
    occurrence = occurrence_of(task.request)
    if occurrence is None:
        return
    runtime = _runtime.runtime_for(task.app)
    try:
        definition = runtime.definition(occurrence.task)
    except ValueError:
        logger.warning(
            "%s carries a pyncette header for unknown schedule %r", task.name, occurrence.task
        )
        return
    # Not made current: the Celery instrumentation attaches its own context in these signals.
    span = tracing.execution(
        task.request,
        definition.name,
        occurrence.instance,
        occurrence.partition,
        occurrence.scheduled_at,
        current=False,
    )
    execution = Execution(runtime, definition, occurrence, dict(task.request.kwargs or {}))
    execution.claim(can_skip=False)
    update_header(task.request, execution.occurrence)
    _PLAIN_EXECUTIONS[task_id] = (execution, set_current(execution.context), span)


def _plain_task_finished(
    sender: Any = None, task_id: str = "", state: str | None = None, retval: Any = None, **_: Any
) -> None:
    entry = _PLAIN_EXECUTIONS.pop(task_id, None)
    if entry is None:
        return
    execution, token, span = entry
    with contextlib.suppress(ValueError):  # reset from another context: nothing to restore
        reset_current(token)
    if state == "SUCCESS":
        execution.succeeded()
    elif state == "FAILURE" and isinstance(retval, BaseException):
        if not isinstance(retval, CONTROL_FLOW):
            span.failed(retval)
        execution.failed(retval)
    execution.release_slot()
    span.finish(execution.outcome)


# --- opening the store when a worker starts -----------------------------------------------------

#: Apps with a worker in this process, recorded at ``worker_init``; pool processes forked from it
#: inherit the set.
_WORKER_APPS: weakref.WeakSet[Any] = weakref.WeakSet()


def _worker_starting(sender: Any = None, **_: Any) -> None:
    """Import the store's module before the pool starts (``worker_init``, the main process).

    Pool processes forked later inherit the import, so no first task pays for it: importing
    SQLAlchemy alone takes most of a second of CPU. Nothing connects here: a connection made
    before the fork would be shared by the children.
    """
    app = getattr(sender, "app", None)
    runtime = _runtime.existing_runtime(app) if app is not None else None
    if runtime is None:
        return
    _WORKER_APPS.add(app)
    try:
        runtime.import_store()
    except Exception:
        logger.exception("celery-pyncette cannot load its store; its tasks will fail")


def _open_stores_in_background() -> threading.Thread | None:
    """Open the store of every app with a worker here, in a thread; the thread, if any.

    The first task then finds the connection open and the store's clock read; if it comes
    first, it waits for the opening under the runtime's lock. A failure is logged, and the first
    task tries again.
    """
    found = [_runtime.existing_runtime(app) for app in list(_WORKER_APPS)]
    runtimes = [runtime for runtime in found if runtime is not None]
    if not runtimes:
        return None

    def open_stores() -> None:
        for runtime in runtimes:
            try:
                runtime.open_store()
            except Exception as exc:
                logger.warning(
                    "could not open the celery-pyncette store at worker start (%s: %s); "
                    "the first task tries again",
                    type(exc).__name__,
                    exc,
                )

    thread = threading.Thread(target=open_stores, name="celery-pyncette-open-store", daemon=True)
    thread.start()
    return thread


def _pool_process_starting(**_: Any) -> threading.Thread | None:
    """Open the store of a prefork pool process in the background (``worker_process_init``).

    In the background because a prefork child that takes more than
    ``worker_proc_alive_timeout`` (4 s) to start is killed, and a store that does not answer
    would take longer. The solo and threads pools send this signal in the worker's main process
    while the pool is built, before an embedded beat (``-B``) is forked from that process: an
    SQLite file open at that fork hangs the beat's own connection to it (SQLite's lock state
    does not survive a fork), so there the store opens at ``worker_ready``, once nothing is
    forked any more.
    """
    if billiard.process.current_process().name == "MainProcess":
        return None
    return _open_stores_in_background()


def _worker_ready(**_: Any) -> threading.Thread | None:
    """Open the store of a solo or threads worker (see :func:`_pool_process_starting`)."""
    if billiard.process.current_process().name != "MainProcess":
        return None
    return _open_stores_in_background()


def _process_ending(**_: Any) -> None:
    """Tear down the fixtures this process set up, of every app, in reverse order."""
    _runtime.teardown_fixtures()
