"""One run of one occurrence in a worker: taking the lease, strikes, and settling the outcome.

See :mod:`celery_pyncette.worker` for the outcome table per execution and failure mode.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery.exceptions import Ignore, Reject, Retry
from celery.utils.dispatch import Signal

from celery_pyncette import _events as events
from celery_pyncette import _misfire as misfire
from celery_pyncette import _quarantine as quarantine
from celery_pyncette import _runs as runs
from celery_pyncette import metrics, signals
from celery_pyncette._concurrency import release
from celery_pyncette._context import Context
from celery_pyncette._definitions import ExecutionMode, FailureMode, TaskDefinition
from celery_pyncette._extras import drop_extras
from celery_pyncette._ids import lease_tokens
from celery_pyncette._occurrence import Occurrence
from celery_pyncette.errors import LeaseLostError, StoreError
from celery_pyncette.schedules import Schedule, schedule_from_spec
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Run, Status, Store

if TYPE_CHECKING:
    from celery_pyncette._runtime import Runtime

logger = logging.getLogger("celery_pyncette.worker")

#: Exceptions that are Celery control flow, not failures of the task.
CONTROL_FLOW = (Retry, Ignore, Reject)


class Execution:
    """One run of one occurrence in a worker: lease check, context, outcome."""

    def __init__(
        self,
        runtime: Runtime,
        definition: TaskDefinition,
        occurrence: Occurrence | None,
        args: dict[str, Any],
    ):
        self.runtime = runtime
        self.definition = definition
        self.occurrence = occurrence
        #: Occurrences that fell before this moment are covered by this run (see Schedule.next_run).
        self.started_at = runtime.now()
        self.context = Context(runtime=runtime, task=definition, args=args, occurrence=occurrence)
        self._slot_held = True
        #: How the run was settled (the ``outcome`` of ``occurrence_settled``), ``"skipped"`` when
        #: its lease was taken over; ``None`` while nothing was (or when the store failed).
        self.outcome: str | None = None
        #: What a failed run raised (its history entry names it).
        self._error: BaseException | None = None

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
        store = self.runtime.store
        (token,) = lease_tokens(1)
        try:
            store.extend_lease(occurrence.key, occurrence.lease, until, new_lease=token)
        except LeaseLostError:
            metrics.record_lease_lost(self.definition.name)
            self._signal(signals.lease_lost)
            logger.warning(
                "%s %s: its lease was taken over (a redelivered or re-sent message)",
                "skipped" if can_skip else "running (a plain task cannot be skipped)",
                self.described,
            )
            # The slot is the lease holder's (a first delivery still running keeps it).
            self._slot_held = False
            if can_skip:
                self.outcome = "skipped"
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
                self.runtime.store.extend_lease(slot[0], slot[1], until)

    def release_slot(self) -> None:
        """Free the concurrency slot this occurrence holds, if any (not when :meth:`claim` found
        the lease taken over: the slot then belongs to the run that holds it)."""
        if self._slot_held and self.occurrence is not None and self.occurrence.slot is not None:
            release(self.runtime.store, self.occurrence.slot)

    def struck(self) -> bool:
        """True when a strike disables this occurrence; it is then committed as ``struck``.

        A strike that landed after beat sent the message is honoured here. When the strikes cannot
        be read, the occurrence runs (a store outage must not silently drop work).
        """
        if self.occurrence is None:
            return False
        try:
            strike = self.runtime.strike_view.struck(self.definition.name, self.context.args)
        except StoreError:
            logger.warning(
                "could not read strikes; running %s", self.definition.name, exc_info=True
            )
            return False
        if strike is None:
            return False
        logger.info("skipped %s: struck by %s", self.described, strike)
        self._signal(signals.occurrence_struck, strike=strike, by="worker")
        self._settle("struck")
        return True

    def schedule(self) -> Schedule | None:
        """The schedule that computes the next run of this occurrence's instance.

        Raises ``ValueError`` when the message's stored spec cannot be decoded (see
        :meth:`_settle`, which quarantines the record then).
        """
        occurrence = self.occurrence
        if occurrence is not None and occurrence.spec is not None:
            # A dynamic instance's, or an extra occurrence's once-off (static ones too).
            schedule = schedule_from_spec(occurrence.spec)
            if occurrence.instance is None:
                return schedule
            return schedule.bound_to(occurrence.task, occurrence.instance)
        return self.definition.schedule

    def succeeded(self) -> None:
        """Apply the outcome of a run that returned."""
        self._settle("success")

    def expired(self) -> None:
        """Settle an occurrence whose message expired before it ran (status ``"expired"``), and
        free its concurrency slot."""
        logger.info("expired %s: its message came after its expiry; not run", self.described)
        self._settle("expired")
        self.release_slot()

    def failed(self, exc: BaseException) -> None:
        """Apply the outcome of a run that raised ``exc``."""
        if isinstance(exc, CONTROL_FLOW):
            return
        metrics.record_failure(self.definition.name)
        mode = self.definition.failure_mode
        occurrence = self.occurrence
        if occurrence is None:
            return
        if self.definition.execution_mode is ExecutionMode.AT_MOST_ONCE or mode is FailureMode.NONE:
            outcome = "lease kept" if occurrence.lease else "not retried (at-most-once)"
            logger.warning("failed %s (%s): %s", self.described, type(exc).__name__, outcome)
            if not self._apply_instance_changes():
                if occurrence.lease is not None:  # at-least-once: sent again after its lease
                    self._record(self._entry("failed", exc))
                self._settled("kept" if occurrence.lease else "not settled")
            return
        if mode is FailureMode.COMMIT:
            logger.warning("failed %s (%s): committed", self.described, type(exc).__name__)
            self._error = exc
            self._settle("failed")
            return
        if self._apply_instance_changes():  # unschedule() / reschedule() stand, as in NONE
            logger.warning("failed %s (%s): instance changed", self.described, type(exc).__name__)
            return
        logger.warning("failed %s (%s): unlocked", self.described, type(exc).__name__)
        lease = occurrence.lease
        run = self._entry("failed", exc)
        history_size = self.runtime.settings.history_size
        if lease is not None and self._guard(
            lambda: self.runtime.store.unlock(
                occurrence.key, lease, run=run, history_size=history_size
            ),
            run,
        ):
            self._settled("unlocked")

    def _settle(self, status: Status) -> None:
        occurrence = self.occurrence
        if occurrence is None or occurrence.lease is None:
            if not self._apply_instance_changes():
                self._settled("not settled")
            return
        if self._apply_instance_changes():
            return
        now = self.runtime.now()
        next_run, problem = quarantine.next_run_of(
            self.schedule,
            lambda schedule: schedule.next_run(
                occurrence.scheduled_at, now, self.definition.catch_up, started_at=self.started_at
            ),
        )
        if problem is not None:  # never raised into Celery; the run itself stands
            found_by = f"found by the worker after {self.described} ({status})"
            quarantine.isolate(
                self.runtime.store, occurrence.key, occurrence.lease, problem, now, found_by
            )
            return
        lease = occurrence.lease
        started = None if status == "struck" else self.started_at
        run = runs.entry(occurrence.scheduled_at, started, now, status, self._error)
        limit = runs.max_runs_of(occurrence.key, occurrence.spec, self.definition.max_runs)
        history_size = self.runtime.settings.history_size
        if self._guard(
            lambda: self.runtime.store.commit(
                occurrence.key,
                lease,
                next_run,
                now,
                status,
                run=run,
                history_size=history_size,
                max_runs=limit,
            ),
            run,
        ):
            metrics.record_commit(self.definition.name, status)
            self._settled(status)
            logger.info(
                "committed %s: %s, next run %s",
                self.described,
                status,
                next_run.isoformat() if next_run else "none (removed)",
            )

    def _apply_instance_changes(self) -> bool:
        """Apply ``context.unschedule()`` / ``reschedule()``; True when one was applied (the
        ``occurrence_settled`` signal then says which, once the store took it)."""
        occurrence, context = self.occurrence, self.context
        if occurrence is None:
            return False
        store = self.runtime.store
        # An extra occurrence (run now, backfill) changes the instance it ran for, and is done.
        extra = occurrence.key if occurrence.record is not None else None
        if context.unscheduled:
            if self._guard(lambda: _delete(store, occurrence.instance_key, extra)):
                self._settled("removed")
            return True
        if context.rescheduled is not None:
            schedule, args = context.rescheduled
            schedule = schedule.bound_to(occurrence.task, occurrence.instance)
            now = self.runtime.now()
            first = schedule.first_run(now)
            if first is None:
                if self._guard(lambda: _delete(store, occurrence.instance_key, extra)):
                    self._settled("removed")
                return True
            grace = misfire.stored_grace(self.context.instance_spec())
            spec = misfire.with_grace(schedule.to_spec(), grace)
            record = InstanceRecord(occurrence.instance_key, first, spec, args)
            if self._guard(lambda: _replace(store, record, now, extra)):
                self._settled("rescheduled")
            return True
        return False

    def _settled(self, outcome: str) -> None:
        """The run is settled with ``outcome``: kept (for its span) and sent as a signal."""
        self.outcome = outcome
        self._signal(signals.occurrence_settled, outcome=outcome)

    def _signal(self, signal: Signal, **arguments: Any) -> None:
        """Send ``signal`` about this occurrence (nothing for a direct call)."""
        occurrence = self.occurrence
        if occurrence is not None:
            events.send(
                signal,
                self.definition.name,
                occurrence.instance,
                occurrence.partition,
                occurrence.scheduled_at,
                **arguments,
            )

    @property
    def described(self) -> str:
        """This occurrence as log lines show it."""
        occurrence = self.occurrence
        return self.definition.describe(
            occurrence.instance if occurrence else None,
            occurrence.scheduled_at if occurrence else None,
            self.context.args,
        )

    def _entry(self, status: Status, error: BaseException | None) -> Run:
        """The history entry of this run, settled now with ``status``."""
        assert self.occurrence is not None
        now = self.runtime.now()
        return runs.entry(self.occurrence.scheduled_at, self.started_at, now, status, error)

    def _record(self, run: Run) -> None:
        """Add ``run`` to the instance's history alone (lease, next run and count untouched):
        one round trip, none with a history size of 0; a store failure is logged, never raised
        into Celery."""
        occurrence, size = self.occurrence, self.runtime.settings.history_size
        if occurrence is None or size <= 0:
            return
        try:
            self.runtime.store.record_run(occurrence.key, run, size)
        except StoreError:
            logger.warning(
                "could not add the %s run of %s to its history",
                run.status,
                self.described,
                exc_info=True,
            )

    def _guard(self, action: Callable[[], Any], run: Run | None = None) -> bool:
        """Run a store action; True when it succeeded. A lost lease or a store failure is logged,
        never raised into Celery. ``run``: the entry a commit or unlock carried; when its lease
        turns out lost, it is recorded as ``lease_lost`` instead (one more round trip)."""
        try:
            action()
        except LeaseLostError:
            metrics.record_lease_lost(self.definition.name)
            self._signal(signals.lease_lost)
            logger.warning(
                "lease of %s was lost before its outcome was recorded; it may run again",
                self.described,
            )
            if run is not None:
                self._record(replace(run, status="lease_lost"))
        except StoreError:
            logger.error(
                "could not record the outcome of %s; it runs again after its lease",
                self.described,
                exc_info=True,
            )
        else:
            return True
        return False


def _delete(store: Store, key: InstanceKey, extra: InstanceKey | None) -> None:
    """Remove an instance, and its extra occurrences (the one that removed it, if one did)."""
    store.delete(key)
    if extra is not None:
        store.delete(extra)
    drop_extras(store, [key])


def _replace(
    store: Store, record: InstanceRecord, now: datetime, extra: InstanceKey | None
) -> None:
    """Reschedule an instance, and remove the extra occurrence that rescheduled it (if one did)."""
    store.upsert(record, now, force=True)
    if extra is not None:
        store.delete(extra)
