"""Jitter: each occurrence of a recurring schedule is sent a fixed offset after its time.

The offset of occurrence ``n`` of instance ``(task, instance)`` lies in ``[0, jitter)`` and is
derived from them alone (SHA-1, as a 160-bit fraction of the span), so every beat computes the
same one and an occurrence sent again (its lease expired) keeps it:

- **cron**: from ``(task, instance, n)``, scaled onto ``min(jitter, gap)`` where ``gap`` is the
  time to the following occurrence. The send time then stays before the next occurrence, so
  occurrences never swap order and the occurrence is recovered exactly from its send time: it is
  the latest occurrence at or before it (:meth:`JitteredSchedule.nominal`).
- **interval**: from ``(task, instance)``, scaled onto ``min(jitter, interval)``: one offset for
  every occurrence of the instance. An interval has no clock times that instances share, only
  the instant they were created; a fixed offset spreads instances created together while keeping
  the time between two sends exactly the interval, and the occurrence is the send time minus it.

What the store keeps as the next run is the send time (``n + offset``): claims, leases,
``catch_up`` and coalescing work on it unchanged on every store, with no extra field or round
trip. The message's ``scheduled_at`` (and ``context.scheduled_at``) is the nominal ``n``, and the
next run is computed from ``n``. A once-off (``execute_at``) has no jitter: give it the time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette import _bounds as bounds
from celery_pyncette.schedules._base import Schedule, aware_utc, shift
from celery_pyncette.schedules._cron import CronSchedule
from celery_pyncette.schedules._interval import IntervalSchedule
from celery_pyncette.schedules._window import BoundedSchedule

_MICROSECOND = timedelta(microseconds=1)


def _core(schedule: Schedule) -> Schedule:
    return schedule.inner if isinstance(schedule, BoundedSchedule) else schedule


@dataclass(frozen=True)
class JitteredSchedule(Schedule):
    """``inner`` (a cron or interval schedule, bounded or not) with each occurrence sent up to
    ``jitter`` late (see the module documentation).

    ``task`` and ``instance`` name the instance the offsets belong to (:meth:`bound_to`); they are
    not part of the schedule's value or spec. Raises ``ValueError`` for a ``jitter`` that is not
    a positive ``timedelta`` of at most ten years, or a schedule that is not recurring.
    """

    inner: Schedule
    jitter: timedelta
    task: str | None = field(default=None, compare=False)
    instance: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.jitter, timedelta) or isinstance(self.jitter, bool):
            raise ValueError(f"jitter must be a positive timedelta, got {self.jitter!r}")
        bounds.check_duration(self.jitter, "jitter")
        if not isinstance(_core(self.inner), (CronSchedule, IntervalSchedule)):
            what = getattr(_core(self.inner), "description", repr(self.inner))
            raise ValueError(
                f"jitter applies to a recurring schedule (cron or interval), not to {what}; "
                "a once-off (execute_at) runs at the time given"
            )

    def bound_to(self, task: str, instance: str | None) -> JitteredSchedule:
        return replace(self, task=task, instance=instance)

    def offset(self, occurrence: datetime) -> timedelta:
        """How long after ``occurrence`` it is sent: in ``[0, min(jitter, gap))``."""
        if self.task is None:
            raise RuntimeError("a jittered schedule is used before bound_to() named its instance")
        occurrence = aware_utc(occurrence, "occurrence")
        core = _core(self.inner)
        span = self.jitter
        if isinstance(core, IntervalSchedule):
            identity: list[Any] = [self.task, self.instance]
            span = min(span, core.interval)
        else:
            identity = [self.task, self.instance, occurrence.isoformat()]
            following = self.inner.next_after(occurrence)
            if following is not None:
                span = min(span, following - occurrence)
        digest = hashlib.sha1(json.dumps(identity).encode(), usedforsecurity=False).digest()
        micros = (int.from_bytes(digest, "big") * (span // _MICROSECOND)) >> 160
        return timedelta(microseconds=micros)

    def first_run(self, now: datetime) -> datetime | None:
        """The send time of the inner schedule's first run."""
        return self._sent(self.inner.first_run(now))

    def next_after(self, after: datetime) -> datetime | None:
        """The inner schedule's next *occurrence* (nominal) after ``after``."""
        return self.inner.next_after(after)

    def next_run(
        self,
        scheduled_at: datetime,
        now: datetime,
        catch_up: bool,
        started_at: datetime | None = None,
    ) -> datetime | None:
        """The send time of the inner schedule's next run after the nominal ``scheduled_at``."""
        return self._sent(self.inner.next_run(scheduled_at, now, catch_up, started_at=started_at))

    def due_occurrence(self, due: datetime, now: datetime, catch_up: bool) -> datetime:
        return self.inner.due_occurrence(due, now, catch_up)

    def nominal(self, due_at: datetime) -> datetime:
        """The occurrence a stored send time belongs to (exact for a time this schedule wrote).

        A time it did not write (a record stored before the jitter was added) is read as the
        latest occurrence at or before it, or as itself when no occurrence lies within the jitter
        before it."""
        due_at = aware_utc(due_at, "due_at")
        if isinstance(_core(self.inner), IntervalSchedule):
            return due_at - self.offset(due_at)
        start = shift(due_at, -self.jitter)
        candidate = None if start is None else self.inner.next_after(start)
        if candidate is None or candidate > due_at:
            return due_at
        return self.inner.due_occurrence(candidate, due_at, catch_up=False)

    def send_after(self, after: datetime) -> datetime | None:
        """The first send time strictly after ``after``: only occurrences within the jitter
        before ``after`` can still be sent after it, and sends keep the occurrences' order. (An
        interval has no fixed times: its next occurrence after ``after``, sent at its offset.)"""
        after = aware_utc(after, "after")
        if isinstance(_core(self.inner), IntervalSchedule):
            return self._sent(self.inner.next_after(after))
        start = shift(after, -self.jitter)
        candidate = None if start is None else self.inner.next_after(start)
        if candidate is None or candidate > after:
            return self._sent(candidate)
        latest = self.inner.due_occurrence(candidate, after, catch_up=False)
        sent = self._sent(latest)
        if sent is not None and sent > after:
            return sent
        return self._sent(self.inner.next_after(latest))

    def to_spec(self) -> dict[str, Any]:
        return {**self.inner.to_spec(), "jitter": self.jitter.total_seconds()}

    @property
    def description(self) -> str:
        return f"{self.inner.description}, sent up to {self.jitter} late"

    def _sent(self, occurrence: datetime | None) -> datetime | None:
        if occurrence is None:
            return None
        return shift(occurrence, self.offset(occurrence))
