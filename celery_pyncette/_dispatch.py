"""Claim due occurrences and send them as ordinary Celery task messages.

For each polled task partition, a batch is claimed under a lease, then:

* at-least-once: each message is published with the lease in its ``pyncette`` header; a publish
  failure unlocks that claim and the rest of the batch, so the occurrences are due again at once.
  The published claims' leases (and their concurrency slots) are then extended over their wait in
  the broker queue, ``pyncette_delivery_timeout``, in one store call for the batch;
* at-most-once: the next runs are committed first, and only the committed ones are published.

A broken record (a stored spec that no longer parses, a next run that cannot be computed) is
quarantined (see :mod:`celery_pyncette._quarantine`); it never holds up the other occurrences of
the batch, and is not claimed again until it is repaired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from celery.utils.dispatch import Signal

from celery_pyncette import _events as events
from celery_pyncette import _misfire as misfire
from celery_pyncette import _quarantine as quarantine
from celery_pyncette import _runs as runs
from celery_pyncette import _tracing as tracing
from celery_pyncette import metrics, signals
from celery_pyncette._concurrency import Slots
from celery_pyncette._definitions import ExecutionMode, TaskDefinition
from celery_pyncette._occurrence import HEADER, header_value
from celery_pyncette._publish import MessageSender, OutgoingMessage, Publisher
from celery_pyncette._queue_wait import QueueWaitCover
from celery_pyncette._records import is_extra_instance, presented_instance
from celery_pyncette.errors import CorruptRecordError, StoreError
from celery_pyncette.schedules import Schedule, schedule_from_spec
from celery_pyncette.stores.base import (
    STATIC_INSTANCE,
    ClaimedRecord,
    Commit,
    InstanceKey,
    InstanceRecord,
    LeaseRef,
    Status,
)

if TYPE_CHECKING:
    from celery_pyncette._runtime import Runtime

logger = logging.getLogger("celery_pyncette.dispatch")

#: Most batches drained from one task partition in one tick, so one busy partition cannot starve
#: the others; what is left is taken on the next tick, which then comes at once.
MAX_BATCHES_PER_PARTITION = 20
#: A commit's status, or the status of each committed claim.
StatusOf: TypeAlias = "Status | Callable[[Due], Status]"


def schedule_of(definition: TaskDefinition, record: InstanceRecord) -> Schedule:
    """The schedule of a claimed record: the code's for a static task, the stored one otherwise
    (bound to its instance)."""
    if record.key.instance == STATIC_INSTANCE and definition.schedule is not None:
        return definition.schedule
    return schedule_from_spec(record.spec).bound_to(record.key.task, record.key.instance)


def sync_static(runtime: Runtime, definitions: Iterable[TaskDefinition], now: datetime) -> None:
    """Make the store hold one record per static schedule, matching the code.

    A missing record is created at its first occurrence after ``now``; one whose schedule changed
    in code is replaced at once (not after its next run); an unchanged one is left alone. A broken
    one (it cannot be decoded, or it is quarantined) is rewritten from code, with a warning.
    A schedule whose first run cannot be computed is left unscheduled, with a warning.
    """
    store = runtime.store
    static = [d for d in definitions if not d.dynamic and d.schedule is not None]
    broken = quarantine.quarantined_static(store, {d.name for d in static})
    for definition in static:
        schedule = definition.schedule
        assert schedule is not None
        key = InstanceKey(definition.name, 0, STATIC_INSTANCE)
        spec = schedule.to_spec()
        try:
            existing = store.get(key)
        except CorruptRecordError as exc:
            existing, broken[key] = None, exc.reason
        if key not in broken and existing is not None and dict(existing.spec) == spec:
            continue
        try:
            first = schedule.first_run(now)
        except Exception as exc:
            logger.warning(
                "static task %s: its first run cannot be computed (%s); not scheduled",
                definition.name,
                quarantine.reason_of(exc),
            )
            continue
        if first is None:
            logger.warning(
                "static task %s has no future occurrence; not scheduled", definition.name
            )
            if existing is not None or key in broken:  # the old schedule must not run on
                store.delete(key)
            continue
        record = InstanceRecord(key=key, next_run=first, spec=spec, args={})
        store.upsert(record, now, force=True)
        if key in broken:
            logger.warning(
                "rewrote the broken record of static task %s from code (%s), next run %s",
                definition.name,
                broken[key],
                first.isoformat(),
            )
            continue
        logger.info(
            "scheduled %s (%s), next run %s",
            definition.name,
            schedule.description,
            first.isoformat(),
        )


def polled_groups(definitions: Iterable[TaskDefinition]) -> list[tuple[str, int]]:
    """The ``(task, partition)`` groups a tick claims from: each enabled task's polled ones."""
    return [(d.name, p) for d in definitions if d.enabled for p in d.polled_partitions]


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed record ready to send, with its schedule."""

    record: ClaimedRecord
    schedule: Schedule
    slot: LeaseRef | None = None
    #: The occurrence's nominal time when it differs from the stored next run (jitter).
    nominal: datetime | None = None

    @property
    def scheduled_at(self) -> datetime:
        """The occurrence this claim runs: the stored next run (kept when it is sent again), or
        the nominal time it was sent for (a jittered schedule stores the send time)."""
        return self.record.next_run if self.nominal is None else self.nominal


class Dispatcher:
    """The work of one beat tick over every polled task partition."""

    def __init__(
        self, runtime: Runtime, owner: str, publisher: MessageSender | None = None
    ) -> None:
        self.runtime = runtime
        self.owner = owner
        self.publisher: MessageSender = publisher or Publisher(runtime.app)
        self.slots = Slots(owner)
        self.queue_wait = QueueWaitCover()
        #: Asked between batches; True stops claiming (a shutdown was requested).
        self.stopping: Callable[[], bool] = lambda: False

    def dispatch(self, definitions: Iterable[TaskDefinition]) -> bool:
        """Send every due occurrence of the given tasks; True when some were left for later.

        Raises :class:`StoreError` when the store fails; what was claimed and not yet sent by then
        is unlocked where the store still answers, or waits for its lease otherwise.
        """
        try:
            return self._dispatch(definitions)
        finally:
            self.queue_wait.wait()

    def _dispatch(self, definitions: Iterable[TaskDefinition]) -> bool:
        active = [d for d in definitions if d.enabled]
        groups = polled_groups(active)
        if not groups:
            return False
        due = self.runtime.store.due_partitions(groups, self.runtime.now())
        backlog = False
        for definition in active:
            for partition in definition.polled_partitions:
                if self.stopping():
                    return False
                if (definition.name, partition) in due:
                    backlog |= self._drain(definition, partition)
        return backlog

    def _drain(self, definition: TaskDefinition, partition: int) -> bool:
        """Claim and send batches of one task partition; True when it may hold more due now.

        The store may claim the next batch while this one is sent; stopping early (shutdown, or a
        failure) closes the stream, which unlocks a batch claimed ahead.
        """
        settings = self.runtime.settings
        lease = definition.lease_duration or settings.lease_duration
        if self.stopping():
            return False
        started = tracing.clock()
        batches = self.runtime.store.claim_batches(
            definition.name,
            partition,
            self.runtime.now,
            settings.batch_size,
            lease,
            self.owner,
            MAX_BATCHES_PER_PARTITION,
        )
        healthy = 0
        with closing(batches):
            for batch in batches:
                claim = tracing.claimed(
                    definition.name,
                    partition,
                    started,
                    len(batch.records),
                    len(batch.quarantined),
                )
                quarantine.report(batch.quarantined)
                healthy = 0
                if batch.records:
                    metrics.record_claimed(definition.name, len(batch.records))
                    with tracing.sending(
                        definition.name, partition, len(batch.records), claim
                    ) as span:
                        healthy = self._send_batch(definition, batch.records, batch.now, span)
                # Quarantined records count against the claim's limit: a batch they filled is
                # followed by another, so the healthy records behind them go out in this tick.
                taken = len(batch.records) + len(batch.quarantined)
                if taken < settings.batch_size or self.stopping():
                    return False
                started = tracing.clock()
        # Every batch was full. Only healthy records make a backlog: a last batch of quarantined
        # records alone does not (its like are quarantined on the next tick, at the usual pace).
        return healthy > 0

    def _send_batch(
        self,
        definition: TaskDefinition,
        claimed: list[ClaimedRecord],
        now: datetime,
        span: tracing.SendSpan = tracing.NO_SEND,
    ) -> int:
        """Send one claimed batch; return how many of its records were healthy (not quarantined).

        ``span`` is the batch's send span: its headers go into every message, and it is told what
        the broker took."""
        decoded = quarantine.decodable(
            claimed, lambda r: schedule_of(definition, r), self.runtime.store, now
        )
        ready = [
            Due(record, schedule, nominal=schedule.nominal(record.next_run))
            for record, schedule in decoded
        ]
        healthy = len(ready)
        if signals.occurrence_claimed.receivers:
            for due in ready:
                _send(signals.occurrence_claimed, definition, due, lease=due.record.lease)
        ready = self._skip_struck(definition, ready, now)
        ready = misfire.skip_late(
            definition, ready, now, lambda late, status: self._commit(definition, late, now, status)
        )
        if definition.concurrency_limit is not None:
            ready = self._take_slots(definition, ready, now)
        if definition.execution_mode is ExecutionMode.AT_MOST_ONCE:
            ready = self._commit_before_send(definition, ready, now)
        self._publish(definition, ready, span)
        return healthy

    def _skip_struck(
        self, definition: TaskDefinition, ready: list[Due], now: datetime
    ) -> list[Due]:
        """Advance struck occurrences without sending them (``last_status = "struck"``)."""
        view = self.runtime.strike_view
        if not view.current():
            return ready
        strikes = {
            d.record.key: strike
            for d in ready
            if (strike := view.struck(definition.name, {**definition.args, **d.record.args}))
        }
        if not strikes:
            return ready
        struck = [d for d in ready if d.record.key in strikes]
        failed = set(self._commit(definition, struck, now, "struck"))
        for due in struck:
            if due.record.key not in failed:
                logger.info("skipped %s: struck", self._describe(definition, due))
                strike = strikes[due.record.key]
                _send(signals.occurrence_struck, definition, due, strike=strike, by="beat")
        skipped = {d.record.key for d in struck}
        return [d for d in ready if d.record.key not in skipped]

    def _take_slots(self, definition: TaskDefinition, ready: list[Due], now: datetime) -> list[Due]:
        """Give each occurrence a concurrency slot; those left without one stay due (unlocked)."""
        limit = definition.concurrency_limit
        assert limit is not None
        lease = definition.lease_duration or self.runtime.settings.lease_duration
        placed: list[Due] = []
        waiting: list[Due] = []
        for due in ready:
            pool = limit.pool(definition.name, {**definition.args, **due.record.args})
            if pool is None:
                placed.append(due)
                continue
            slot = self.slots.acquire(self.runtime.store, pool, limit.limit, now, lease)
            if slot is None:
                waiting.append(due)
            else:
                placed.append(replace(due, slot=slot))
        if waiting:
            self.runtime.store.unlock_many([d.record.ref for d in waiting])
            logger.info(
                "%d occurrence(s) of %s wait for a concurrency slot", len(waiting), definition.name
            )
        return placed

    def _commit_before_send(
        self, definition: TaskDefinition, ready: list[Due], now: datetime
    ) -> list[Due]:
        lost = set(self._commit(definition, ready, now, "sent"))
        return [d for d in ready if d.record.key not in lost]

    def _commit(
        self, definition: TaskDefinition, items: list[Due], now: datetime, status: StatusOf
    ) -> list[InstanceKey]:
        """Advance claimed occurrences past ``now`` with ``status`` (or each with its own); return
        the keys not committed: their lease was lost, or their next run cannot be computed (then
        they are quarantined)."""
        store = self.runtime.store
        done, failed = quarantine.computed(
            items,
            lambda d: d.schedule.next_run(d.scheduled_at, now, definition.catch_up, started_at=now),
            lambda d: d.record,
            store,
            now,
        )
        of = status if callable(status) else lambda _: status
        history = self.runtime.settings.history_size
        commits = [
            Commit(
                d.record.key,
                d.record.lease,
                run,
                of(d),
                *runs.commit_extras(d.record, of(d), now, definition.max_runs, history),
            )
            for d, run in done
        ]
        return failed + store.commit_many(commits, now)

    def _publish(
        self, definition: TaskDefinition, ready: list[Due], span: tracing.SendSpan
    ) -> None:
        if not ready:
            span.published(0, 0)
            return
        at_least_once = definition.execution_mode is ExecutionMode.AT_LEAST_ONCE
        # A batch's claims share their lease expiry, and often their due time: format each once.
        iso: dict[datetime, str] = {}
        options: dict[datetime, Mapping[str, Any]] = {}  # per occurrence time, with its expiry
        trace_headers = span.headers
        messages = [self._message(definition, d, iso, trace_headers, options) for d in ready]
        unsent_at = set(self.publisher.publish(messages))
        unsent = [ready[i] for i in sorted(unsent_at)]
        span.published(len(ready) - len(unsent), len(unsent))
        if signals.occurrence_sent.receivers:
            for index, due in enumerate(ready):
                if index not in unsent_at:
                    _send(signals.occurrence_sent, definition, due)
        if len(unsent) < len(ready):
            self._cover_queue_wait(
                definition, [d for i, d in enumerate(ready) if i not in unsent_at]
            )
        if not unsent:
            logger.info("sent %d occurrence(s) of %s", len(ready), definition.name)
            metrics.record_sent(definition.name, len(ready))
            if logger.isEnabledFor(logging.DEBUG):
                for due in ready:
                    logger.debug("sent %s", self._describe(definition, due))
            return
        logger.error(
            "%d claimed occurrence(s) of %s were not sent; %s",
            len(unsent),
            definition.name,
            "unlocked" if at_least_once else "lost (at-most-once)",
        )
        if at_least_once:
            try:
                self.runtime.store.unlock_many([d.record.ref for d in unsent])
            except StoreError:
                logger.warning("could not unlock unsent claims; they are re-sent after their lease")

    def _cover_queue_wait(self, definition: TaskDefinition, sent: list[Due]) -> None:
        """Extend the leases of sent occurrences (and their slots) over their wait in the queue.

        One ``extend_leases`` call for the batch, to ``now + pyncette_delivery_timeout`` (or the
        task's lease, if longer), run on the queue-wait thread while beat goes on (see
        :mod:`celery_pyncette._queue_wait`): an occurrence waiting for a worker is not claimed and
        sent again, and one whose message the broker lost is sent again after that bound. The worker
        takes the lease for its run when it starts (:meth:`Execution.claim`). A lease found lost
        here was taken by a worker that started already, or is past saving; both are left alone.
        """
        settings = self.runtime.settings
        leased = definition.execution_mode is ExecutionMode.AT_LEAST_ONCE
        items = [d.record.ref for d in sent if leased]
        items += [d.slot for d in sent if d.slot is not None]
        if not items:
            return
        lease = definition.lease_duration or settings.lease_duration
        until = self.runtime.now() + max(settings.delivery_timeout, lease)
        self.queue_wait.submit(lambda: self._extend(definition, items, until, len(sent)))

    def _extend(
        self,
        definition: TaskDefinition,
        items: list[LeaseRef],
        until: datetime,
        sent: int,
    ) -> None:
        """The store write of :meth:`_cover_queue_wait` (on the queue-wait thread)."""
        try:
            lost = self.runtime.store.extend_leases(items, until)
        except StoreError:
            logger.warning(
                "could not extend the leases of %d sent occurrence(s) of %s over their wait in "
                "the queue; those still waiting when their claim expires are sent again",
                sent,
                definition.name,
                exc_info=True,
            )
            return
        if lost:
            logger.debug(
                "%d lease(s) of sent occurrences of %s had changed before their queue wait was "
                "covered (a worker started them already)",
                len(lost),
                definition.name,
            )

    @staticmethod
    def _describe(definition: TaskDefinition, due: Due) -> str:
        return definition.describe(
            presented_instance(due.record),
            due.scheduled_at,
            {**definition.args, **due.record.args},
        )

    @staticmethod
    def _message(
        definition: TaskDefinition,
        due: Due,
        iso: dict[datetime, str],
        trace_headers: Mapping[str, str] = tracing.NO_HEADERS,
        options: dict[datetime, Mapping[str, Any]] | None = None,
    ) -> OutgoingMessage:
        """The message of one claim; ``iso`` memoizes ``datetime.isoformat`` for the batch, and
        ``trace_headers`` (the send span's context, if any) go into its headers. ``options``
        memoizes the Celery options per occurrence time (``expires`` counts from it)."""
        record = due.record
        leased = definition.execution_mode is ExecutionMode.AT_LEAST_ONCE
        instance = presented_instance(record)
        extra = record.key.instance if is_extra_instance(record.key.instance) else None
        header = header_value(
            definition.name,
            instance,
            record.key.partition,
            due.scheduled_at,
            definition.execution_mode,
            record.lease if leased else None,
            record.locked_until if leased else None,
            record.spec if instance is not None or extra is not None else None,
            due.slot,
            iso,
            extra,
        )
        return OutgoingMessage(
            task=definition.celery_name,
            kwargs={**definition.args, **record.args} if definition.args else record.args,
            headers={HEADER: header, **trace_headers} if trace_headers else {HEADER: header},
            args=definition.positional,
            options=definition.options
            if misfire.backfilled(record)
            else misfire.message_options(definition.options, due.scheduled_at, options),
        )


def _send(signal: Signal, definition: TaskDefinition, due: Due, **arguments: Any) -> None:
    key = due.record.key
    instance = presented_instance(due.record)
    events.send(signal, definition.name, instance, key.partition, due.scheduled_at, **arguments)
