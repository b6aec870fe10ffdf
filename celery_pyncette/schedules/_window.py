"""Bounds on a schedule's occurrences: none before ``start_at``, none after ``end_at``.

:class:`BoundedSchedule` wraps a cron, interval or once-off schedule. Its occurrences are the
inner schedule's that fall in ``[start_at, end_at]``, except that an interval whose first run would
come before ``start_at`` starts *at* ``start_at`` (an interval has no clock times of its own; its
phase is its first run). Past ``end_at`` there is no next run, so a dynamic instance is removed
after its last one, like a once-off, and a static task stops. Missed occurrences are coalesced
within the window: an instance found late after ``end_at`` runs the last occurrence before
``end_at`` (once) if it had not run, then stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette.schedules._base import Schedule, aware_utc, shift
from celery_pyncette.schedules._interval import IntervalSchedule

_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class BoundedSchedule(Schedule):
    """``inner``'s occurrences within ``[start_at, end_at]`` (aware; either may be ``None``).

    Raises ``ValueError`` for a naive or non-datetime bound, ``end_at`` not after ``start_at``,
    no bound at all, or an ``inner`` that is not a plain schedule (bounds are not nested).
    """

    inner: Schedule
    start_at: datetime | None = None
    end_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Schedule) or isinstance(self.inner, BoundedSchedule):
            raise ValueError(f"bounds apply to a plain schedule, got {self.inner!r}")
        if self.start_at is None and self.end_at is None:
            raise ValueError("give start_at or end_at (or both) to bound a schedule")
        start = None if self.start_at is None else aware_utc(self.start_at, "start_at")
        end = None if self.end_at is None else aware_utc(self.end_at, "end_at")
        if start is not None and end is not None and end <= start:
            raise ValueError(
                f"end_at ({end.isoformat()}) must be after start_at ({start.isoformat()})"
            )
        object.__setattr__(self, "start_at", start)
        object.__setattr__(self, "end_at", end)

    def first_run(self, now: datetime) -> datetime | None:
        """The inner first run, moved to the first occurrence from ``start_at`` if earlier;
        ``None`` past ``end_at``."""
        return self._within(self._from_start(self.inner.first_run(now)))

    def next_after(self, after: datetime) -> datetime | None:
        return self._within(self._from_start(self.inner.next_after(after)))

    def next_run(
        self,
        scheduled_at: datetime,
        now: datetime,
        catch_up: bool,
        started_at: datetime | None = None,
    ) -> datetime | None:
        """The inner schedule's next run with ``now`` held at ``end_at``: missed occurrences
        coalesce into the last one in the window, and none follows ``end_at``."""
        now = aware_utc(now, "now")
        started = now if started_at is None else aware_utc(started_at, "started_at")
        limit = now if self.end_at is None else min(now, self.end_at)
        following = self.inner.next_run(scheduled_at, limit, catch_up, started_at=started)
        return self._within(self._from_start(following))

    def due_occurrence(self, due: datetime, now: datetime, catch_up: bool) -> datetime:
        due = aware_utc(due, "due")
        now = aware_utc(now, "now")
        limit = now if self.end_at is None else max(due, min(now, self.end_at))
        return self.inner.due_occurrence(due, limit, catch_up)

    def to_spec(self) -> dict[str, Any]:
        spec = self.inner.to_spec()
        if self.start_at is not None:
            spec["start_at"] = self.start_at.isoformat()
        if self.end_at is not None:
            spec["end_at"] = self.end_at.isoformat()
        return spec

    @property
    def description(self) -> str:
        parts = [self.inner.description]
        if self.start_at is not None:
            parts.append(f"from {self.start_at.isoformat()}")
        if self.end_at is not None:
            parts.append(f"until {self.end_at.isoformat()}")
        return " ".join(parts)

    def _from_start(self, occurrence: datetime | None) -> datetime | None:
        """``occurrence``, or the first occurrence at or after ``start_at`` when it is earlier."""
        start = self.start_at
        if occurrence is None or start is None or occurrence >= start:
            return occurrence
        if isinstance(self.inner, IntervalSchedule):
            return start
        before = shift(start, -_JUST_BEFORE)
        return None if before is None else self.inner.next_after(before)

    def _within(self, occurrence: datetime | None) -> datetime | None:
        if occurrence is None or (self.end_at is not None and occurrence > self.end_at):
            return None
        return occurrence
