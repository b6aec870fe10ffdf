"""Poison isolation: a record that cannot be decoded or computed is quarantined, never retried.

Beat and the worker meet such records in four places:

* the store's own claim, which quarantines what it cannot decode and reports it
  (:attr:`~celery_pyncette.stores.base.ClaimedBatch.quarantined`): :func:`report`;
* a claimed record whose stored schedule does not parse: :func:`decodable`;
* a next run that cannot be computed (beat's commit of a struck or at-most-once occurrence, the
  worker's commit): :func:`computed`, or :func:`isolate` directly;
* a broken static record at beat start: :func:`quarantined_static` (``sync_static`` rewrites it).

Each record is taken out of the due index through :meth:`Store.quarantine` -- until
``schedule_task`` repairs it or ``unschedule_task`` removes it -- logged once as a warning with its
key and the reason, and counted (:func:`celery_pyncette.metrics.record_quarantined`). It is never
unlocked: a record put back into the due index would be claimed again in the same tick. When the
store cannot quarantine it, the record keeps the lease it was claimed under and comes back after
that lease: one retry (and one log line) per lease, not a busy loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from celery_pyncette import metrics, signals
from celery_pyncette.schedules import Schedule
from celery_pyncette.stores.base import (
    STATIC_INSTANCE,
    InstanceKey,
    InstanceRecord,
    Quarantined,
    Store,
)

logger = logging.getLogger("celery_pyncette.quarantine")

T = TypeVar("T")
R = TypeVar("R", bound=InstanceRecord)

#: Longest reason stored with a quarantined record (the rest is cut).
MAX_REASON = 500

#: Most quarantined records read at once to count them (the gauge, ``sync_static``).
COUNT_LIMIT = 1000

#: How often beat refreshes the ``pyncette_quarantined_records`` gauge (one store read).
REFRESH_EVERY = timedelta(seconds=60)


def describe(key: InstanceKey) -> str:
    """A record's key as log lines and the CLI show it."""
    if key.instance == STATIC_INSTANCE:
        return f"{key.task} (static)"
    return f"{key.task}[{key.partition}] {key.instance!r}"


def reason_of(exc: BaseException) -> str:
    """What failed, in one line of at most :data:`MAX_REASON` characters."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, ValueError) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:MAX_REASON]


def announce(key: InstanceKey, reason: str, found_by: str) -> None:
    """Log (a warning, once per quarantine) and count a record just quarantined."""
    logger.warning(
        "quarantined %s (%s): %s; schedule_task repairs it, unschedule_task removes it",
        describe(key),
        found_by,
        reason,
    )
    metrics.record_quarantined(key.task)
    if signals.record_quarantined.receivers:
        signals.record_quarantined.send(sender=key.task, key=key, reason=reason, found_by=found_by)


def report(quarantined: Sequence[Quarantined]) -> None:
    """Announce the records a store's claim quarantined on its own."""
    for item in quarantined:
        announce(item.key, item.reason, "the store could not decode it")


def isolate(
    store: Store, key: InstanceKey, lease: str | None, reason: str, now: datetime, found_by: str
) -> bool:
    """Quarantine a record held under ``lease`` (``None``: whatever its lock); True when done.

    Never raises: when the store fails, the record keeps its lease and is met again after it
    (logged then, once more). A lost lease means someone else holds the record now, and meets the
    same problem: nothing is logged here beyond debug.
    """
    try:
        done = store.quarantine(key, lease, reason[:MAX_REASON], now)
    except Exception:
        logger.warning(
            "could not quarantine %s (%s: %s); it comes back after its lease",
            describe(key),
            found_by,
            reason,
            exc_info=True,
        )
        return False
    if done:
        announce(key, reason, found_by)
    else:
        logger.debug("%s was not quarantined: its lease was lost or it is gone", describe(key))
    return done


def decodable(
    records: Sequence[R],
    decode: Callable[[R], Schedule],
    store: Store,
    now: datetime,
) -> list[tuple[R, Schedule]]:
    """The claimed records whose schedule decodes, with it; the others are quarantined."""
    good: list[tuple[R, Schedule]] = []
    for record in records:
        try:
            schedule = decode(record)
        except Exception as exc:
            reason = f"its stored schedule cannot be decoded: {reason_of(exc)}"
            isolate(store, record.key, record.lease, reason, now, "found by beat")
            continue
        good.append((record, schedule))
    return good


def computed(
    items: Sequence[T],
    compute: Callable[[T], datetime | None],
    record_of: Callable[[T], InstanceRecord],
    store: Store,
    now: datetime,
) -> tuple[list[tuple[T, datetime | None]], list[InstanceKey]]:
    """Each item's next run; the items whose next run cannot be computed are quarantined.

    Returns the computed ``(item, next_run)`` pairs and the keys of the quarantined items (also
    those the store failed to quarantine: they are not committed either).
    """
    good: list[tuple[T, datetime | None]] = []
    bad: list[InstanceKey] = []
    for item in items:
        try:
            next_run = compute(item)
        except Exception as exc:
            record = record_of(item)
            reason = f"its next run cannot be computed: {reason_of(exc)}"
            isolate(store, record.key, record.lease, reason, now, "found by beat")
            bad.append(record.key)
            continue
        good.append((item, next_run))
    return good, bad


def next_run_of(
    decode: Callable[[], Schedule | None], compute: Callable[[Schedule], datetime | None]
) -> tuple[datetime | None, str | None]:
    """``compute(decode())`` (``None`` without a schedule), or ``(None, reason)`` when either
    step raises: the reason says which step failed, and what."""
    try:
        schedule = decode()
    except Exception as exc:
        return None, f"its schedule cannot be decoded: {reason_of(exc)}"
    if schedule is None:
        return None, None
    try:
        return compute(schedule), None
    except Exception as exc:
        return None, f"its next run cannot be computed: {reason_of(exc)}"


def quarantined_static(store: Store, tasks: Collection[str]) -> dict[InstanceKey, str]:
    """The quarantined static records of ``tasks``, with their reasons (one read, usually)."""
    if not tasks:
        return {}
    found = store.list_quarantined(None, COUNT_LIMIT)
    if len(found) >= COUNT_LIMIT:  # more than one read holds: ask task by task
        found = [q for task in tasks for q in store.list_quarantined(task, COUNT_LIMIT)]
    return {
        q.key: q.reason for q in found if q.key.task in tasks and q.key.instance == STATIC_INSTANCE
    }


def counts(quarantined: Sequence[Quarantined]) -> dict[str, int]:
    """How many of ``quarantined`` each task has."""
    result: dict[str, int] = {}
    for item in quarantined:
        result[item.key.task] = result.get(item.key.task, 0) + 1
    return result


class GaugeRefresher:
    """Keeps ``pyncette_quarantined_records`` current from beat, one store read per
    :data:`REFRESH_EVERY` at most (none when metrics are off). Counts stop at
    :data:`COUNT_LIMIT` records in all."""

    def __init__(self) -> None:
        self._refreshed_at: datetime | None = None
        self._failed = False

    def refresh(self, store: Store, now: datetime) -> None:
        """Refresh when due; a failure is logged once and never raised (it is only a gauge)."""
        if not metrics.enabled():
            return
        if self._refreshed_at is not None and now - self._refreshed_at < REFRESH_EVERY:
            return
        self._refreshed_at = now
        try:
            found = store.list_quarantined(None, COUNT_LIMIT)
        except Exception:
            if not self._failed:
                logger.warning("could not count quarantined records", exc_info=True)
            self._failed = True
            return
        self._failed = False
        metrics.set_quarantined(counts(found))


def summary(quarantined: Sequence[Quarantined], more: bool, first: int = 3) -> str:
    """One line for ``status``: how many are quarantined, and the first few keys."""
    shown = ", ".join(describe(q.key) for q in quarantined[:first])
    rest = "" if len(quarantined) <= first and not more else ", ..."
    total = f"{len(quarantined)}{'+' if more else ''}"
    return f"{total} record(s) quarantined: {shown}{rest} (see `celery pyncette quarantined`)"
