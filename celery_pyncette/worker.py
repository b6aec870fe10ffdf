"""The worker side: the task base class, the middleware chain, fixtures, and outcomes.

Beat sends each occurrence with a ``pyncette`` header (see :mod:`celery_pyncette.occurrence`).
Before the function runs, an at-least-once execution takes its lease: one atomic write replaces
the message's token with a fresh one, expiring a full ``lease_duration`` from the execution's
start. That proves the lease is still ours, and a message whose lease was taken over
(re-sent after the lease expired, or delivered a second time while the first delivery runs)
does not run the function again. After the run, the outcome is applied per execution and
failure mode:

=================  ==========================  =========================================
mode               success                     exception
=================  ==========================  =========================================
AT_LEAST_ONCE      commit (next run, unlock)   NONE: keep lease; UNLOCK: unlock; COMMIT: commit
AT_MOST_ONCE       nothing (beat committed)    nothing (logged by Celery)
=================  ==========================  =========================================

Celery's own ``retry()`` keeps the lease: the request's header is updated in place with the
execution's token, so the retried message carries it; ``Ignore`` and ``Reject`` keep it too.
Tasks declared with the decorators get :class:`PyncetteTaskMixin`; plain Celery tasks scheduled
through ``beat_schedule`` are handled through signals, which can commit but cannot skip a run
(Celery swallows exceptions raised by signal receivers).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import billiard.process
from celery import signals
from celery.exceptions import Ignore, Reject, Retry

from celery_pyncette import metrics, quarantine
from celery_pyncette.asyncio_bridge import run_coroutine
from celery_pyncette.concurrency import release
from celery_pyncette.context import Context, reset_current, set_current
from celery_pyncette.definitions import ExecutionMode, FailureMode, TaskDefinition
from celery_pyncette.errors import LeaseLostError, StoreError
from celery_pyncette.fixtures import fixtures_for
from celery_pyncette.ids import lease_tokens
from celery_pyncette.occurrence import Occurrence, occurrence_of, update_header
from celery_pyncette.schedules import Schedule, schedule_from_spec
from celery_pyncette.stores.base import InstanceRecord, Status

if TYPE_CHECKING:
    from celery_pyncette.extension import Pyncette

logger = logging.getLogger("celery_pyncette.worker")

#: Exceptions that are Celery control flow, not failures of the task.
_CONTROL_FLOW = (Retry, Ignore, Reject)


def _resolve(value: Any) -> Any:
    return run_coroutine(value) if inspect.iscoroutine(value) else value


def run_chain(
    middlewares: list[Callable[..., Any]], context: Context, function: Callable[[Context], Any]
) -> Any:
    """Call ``function(context)`` inside the middlewares, the first declared outermost.

    Each middleware gets ``(context, call_next)``; sync and ``async def`` middlewares and functions
    mix freely. An exception propagates out like the function's own unless a middleware handles it.
    """

    def call(index: int) -> Any:
        if index == len(middlewares):
            return _resolve(function(context))
        middleware = middlewares[index]
        if inspect.iscoroutinefunction(middleware):

            async def call_next() -> Any:
                return call(index + 1)

            return run_coroutine(middleware(context, call_next))
        return _resolve(middleware(context, lambda: call(index + 1)))

    return call(0)


class Execution:
    """One run of one occurrence in a worker: lease check, context, outcome."""

    def __init__(
        self,
        pyncette: Pyncette,
        definition: TaskDefinition,
        occurrence: Occurrence | None,
        args: dict[str, Any],
    ):
        self.pyncette = pyncette
        self.definition = definition
        self.occurrence = occurrence
        #: Occurrences that fell before this moment are covered by this run (see Schedule.next_run).
        self.started_at = pyncette.now()
        self.context = Context(pyncette=pyncette, task=definition, args=args, occurrence=occurrence)
        self._slot_held = True

    @property
    def leased(self) -> bool:
        """True when this execution holds an at-least-once lease it must settle."""
        occurrence = self.occurrence
        return occurrence is not None and occurrence.lease is not None

    def claim(self, can_skip: bool = True) -> bool:
        """Take the execution lease before running; False when it was taken over (do not run).

        An at-least-once execution replaces its message's lease token with a fresh one, expiring
        a full ``lease_duration`` from its own start, in one atomic store write. Heartbeats, the
        commit and the unlock then use the new token, so a second delivery of the same message
        (a broker redelivering it while this run goes on) carries a token that no longer holds and
        is skipped. A message whose lease was taken over (re-sent after its lease expired, or
        released and sent again) is skipped too. With ``can_skip`` false (plain Celery tasks,
        which signals cannot skip) such a run goes on, logged. A store failure keeps the lease the
        message brought and runs under it.
        """
        occurrence = self.occurrence
        if occurrence is None:
            return True
        until = self.started_at + self.context.lease_duration
        if occurrence.lease is None:
            self._hold_slot(until)  # at-most-once: only the slot is held for the run
            return True
        store = self.pyncette.store
        (token,) = lease_tokens(1)
        try:
            store.extend_lease(occurrence.key, occurrence.lease, until, new_lease=token)
        except LeaseLostError:
            metrics.record_lease_lost(self.definition.name)
            logger.warning(
                "%s %s: its lease was taken over (a redelivered or re-sent message)",
                "skipped" if can_skip else "running (a plain task cannot be skipped)",
                self.described,
            )
            # The slot is the lease holder's (a first delivery still running keeps it).
            self._slot_held = False
            return not can_skip
        except StoreError:
            logger.warning(
                "could not take the lease of %s; running under the lease it has",
                self.described,
                exc_info=True,
            )
            return True
        self.occurrence = replace(occurrence, lease=token, locked_until=until)
        self.context.took_lease(self.occurrence)
        self._hold_slot(until)
        return True

    def _hold_slot(self, until: datetime) -> None:
        """Move the concurrency slot's expiry to the run's (beat held it over the queue wait)."""
        slot = self.occurrence.slot if self.occurrence else None
        if slot is not None:
            with contextlib.suppress(LeaseLostError, StoreError):
                self.pyncette.store.extend_lease(slot[0], slot[1], until)

    def release_slot(self) -> None:
        """Free the concurrency slot this occurrence holds, if any (not when :meth:`claim` found
        the lease taken over: the slot then belongs to the run that holds it)."""
        if self._slot_held and self.occurrence is not None and self.occurrence.slot is not None:
            release(self.pyncette.store, self.occurrence.slot)

    def struck(self) -> bool:
        """True when a strike disables this occurrence; it is then committed as ``struck``.

        A strike that landed after beat sent the message is honoured here. When the strikes cannot
        be read, the occurrence runs (a store outage must not silently drop work).
        """
        if self.occurrence is None:
            return False
        try:
            strike = self.pyncette.strike_view.struck(self.definition.name, self.context.args)
        except StoreError:
            logger.warning(
                "could not read strikes; running %s", self.definition.name, exc_info=True
            )
            return False
        if strike is None:
            return False
        logger.info("skipped %s: struck by %s", self.described, strike)
        self._settle("struck")
        return True

    def schedule(self) -> Schedule | None:
        """The schedule that computes the next run of this occurrence's instance.

        Raises ``ValueError`` when the message's stored spec cannot be decoded (see
        :meth:`_settle`, which quarantines the record then).
        """
        occurrence = self.occurrence
        if (
            occurrence is not None
            and occurrence.instance is not None
            and occurrence.spec is not None
        ):
            return schedule_from_spec(occurrence.spec)
        return self.definition.schedule

    def succeeded(self) -> None:
        """Apply the outcome of a run that returned."""
        self._settle("success")

    def failed(self, exc: BaseException) -> None:
        """Apply the outcome of a run that raised ``exc``."""
        if isinstance(exc, _CONTROL_FLOW):
            return
        metrics.record_failure(self.definition.name)
        mode = self.definition.failure_mode
        occurrence = self.occurrence
        if occurrence is None:
            return
        if self.definition.execution_mode is ExecutionMode.AT_MOST_ONCE or mode is FailureMode.NONE:
            outcome = "lease kept" if occurrence.lease else "not retried (at-most-once)"
            logger.warning("failed %s (%s): %s", self.described, type(exc).__name__, outcome)
            self._apply_instance_changes()
            return
        if mode is FailureMode.COMMIT:
            logger.warning("failed %s (%s): committed", self.described, type(exc).__name__)
            self._settle("failed")
            return
        logger.warning("failed %s (%s): unlocked", self.described, type(exc).__name__)
        lease = occurrence.lease
        if lease is not None:
            self._guard(lambda: self.pyncette.store.unlock(occurrence.key, lease))

    def _settle(self, status: Status) -> None:
        occurrence = self.occurrence
        if occurrence is None or occurrence.lease is None:
            self._apply_instance_changes()
            return
        if self._apply_instance_changes():
            return
        now = self.pyncette.now()
        next_run, problem = quarantine.next_run_of(
            self.schedule,
            lambda schedule: schedule.next_run(
                occurrence.scheduled_at, now, self.definition.catch_up, started_at=self.started_at
            ),
        )
        if problem is not None:  # never raised into Celery; the run itself stands
            found_by = f"found by the worker after {self.described} ({status})"
            quarantine.isolate(
                self.pyncette.store, occurrence.key, occurrence.lease, problem, now, found_by
            )
            return
        lease = occurrence.lease
        if self._guard(
            lambda: self.pyncette.store.commit(occurrence.key, lease, next_run, now, status)
        ):
            metrics.record_commit(self.definition.name, status)
            logger.info(
                "committed %s: %s, next run %s",
                self.described,
                status,
                next_run.isoformat() if next_run else "none (removed)",
            )

    def _apply_instance_changes(self) -> bool:
        """Apply ``context.unschedule()`` / ``reschedule()``; True when one was applied."""
        occurrence, context = self.occurrence, self.context
        if occurrence is None:
            return False
        store = self.pyncette.store
        if context.unscheduled:
            self._guard(lambda: store.delete(occurrence.key))
            return True
        if context.rescheduled is not None:
            schedule, args = context.rescheduled
            now = self.pyncette.now()
            first = schedule.first_run(now)
            if first is None:
                self._guard(lambda: store.delete(occurrence.key))
                return True
            record = InstanceRecord(occurrence.key, first, schedule.to_spec(), args)
            self._guard(lambda: store.upsert(record, now, force=True))
            return True
        return False

    @property
    def described(self) -> str:
        """This occurrence as log lines show it."""
        occurrence = self.occurrence
        return self.definition.describe(
            occurrence.instance if occurrence else None,
            occurrence.scheduled_at if occurrence else None,
            self.context.args,
        )

    def _guard(self, action: Callable[[], Any]) -> bool:
        """Run a store action; True when it succeeded. A lost lease or a store failure is logged,
        never raised into Celery."""
        try:
            action()
        except LeaseLostError:
            metrics.record_lease_lost(self.definition.name)
            logger.warning(
                "lease of %s was lost before its outcome was recorded; it may run again",
                self.described,
            )
        except StoreError:
            logger.error(
                "could not record the outcome of %s; it runs again after its lease",
                self.described,
                exc_info=True,
            )
        else:
            return True
        return False


class PyncetteTaskMixin:
    """Task base class behaviour for pyncette tasks; composes with any Celery ``Task`` class.

    ``__call__`` builds the :class:`Context` from the message (``pyncette`` header and keyword
    arguments), runs the function inside the middlewares and records the outcome in the store.
    """

    typing = False
    name: str
    request: Any
    app: Any
    run: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from celery_pyncette.extension import extension_for

        pyncette = extension_for(self.app)
        occurrence = occurrence_of(self.request)
        definition = pyncette.definition(occurrence.task if occurrence else self.name)
        call_args = {**definition.args, **kwargs}
        execution = Execution(pyncette, definition, occurrence, call_args)
        try:
            if not execution.claim() or execution.struck():
                return None
            update_header(self.request, execution.occurrence)
            token = set_current(execution.context)
            try:
                execution.context.use_fixtures(fixtures_for(pyncette))
                # The base class's __call__ (Flask's app context, Django's) wraps the function.
                call_base = super().__call__  # type: ignore[misc]
                result = run_chain(pyncette.middlewares, execution.context, call_base)
            except BaseException as exc:
                execution.failed(exc)
                raise
            finally:
                reset_current(token)
            execution.succeeded()
            return result
        finally:
            execution.release_slot()


# --- plain Celery tasks scheduled through beat_schedule ------------------------------------------

_PLAIN_EXECUTIONS: dict[str, tuple[Execution, contextvars.Token[Context | None]]] = {}


def _plain_task_started(sender: Any = None, task_id: str = "", task: Any = None, **_: Any) -> None:
    if task is None or isinstance(task, PyncetteTaskMixin):
        return
    occurrence = occurrence_of(task.request)
    if occurrence is None:
        return
    from celery_pyncette.extension import extension_for

    pyncette = extension_for(task.app)
    try:
        definition = pyncette.definition(occurrence.task)
    except ValueError:
        logger.warning(
            "%s carries a pyncette header for unknown schedule %r", task.name, occurrence.task
        )
        return
    execution = Execution(pyncette, definition, occurrence, dict(task.request.kwargs or {}))
    execution.claim(can_skip=False)
    update_header(task.request, execution.occurrence)
    _PLAIN_EXECUTIONS[task_id] = (execution, set_current(execution.context))


def _plain_task_finished(
    sender: Any = None, task_id: str = "", state: str | None = None, retval: Any = None, **_: Any
) -> None:
    entry = _PLAIN_EXECUTIONS.pop(task_id, None)
    if entry is None:
        return
    execution, token = entry
    with contextlib.suppress(ValueError):  # reset from another context: nothing to restore
        reset_current(token)
    if state == "SUCCESS":
        execution.succeeded()
    elif state == "FAILURE" and isinstance(retval, BaseException):
        execution.failed(retval)
    execution.release_slot()


signals.task_prerun.connect(_plain_task_started, weak=False)
signals.task_postrun.connect(_plain_task_finished, weak=False)


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
    from celery_pyncette.extension import existing_extension

    app = getattr(sender, "app", None)
    pyncette = existing_extension(app) if app is not None else None
    if pyncette is None:
        return
    _WORKER_APPS.add(app)
    try:
        pyncette.import_store()
    except Exception:
        logger.exception("celery-pyncette cannot load its store; its tasks will fail")


def _open_stores_in_background() -> threading.Thread | None:
    """Open the store of every app with a worker here, in a thread; the thread, if any.

    The first task then finds the connection open and the store's clock read; if it comes
    first, it waits for the opening under the store's lock. A failure is logged, and the first
    task tries again.
    """
    from celery_pyncette.extension import existing_extension

    extensions = [p for p in map(existing_extension, list(_WORKER_APPS)) if p is not None]
    if not extensions:
        return None

    def open_stores() -> None:
        for pyncette in extensions:
            try:
                pyncette.open_store()
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


signals.worker_init.connect(_worker_starting, weak=False)
signals.worker_process_init.connect(_pool_process_starting, weak=False)
signals.worker_ready.connect(_worker_ready, weak=False)
