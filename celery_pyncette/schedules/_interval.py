"""Fixed intervals, which keep the phase of their first run, and once-off runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette import _bounds as bounds
from celery_pyncette.schedules._base import Schedule, aware_utc, shift


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """Every ``interval`` (a positive ``timedelta``), keeping the phase of the first run."""

    interval: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.interval, timedelta):
            raise ValueError(f"interval must be a timedelta, got {self.interval!r}")
        bounds.check_duration(self.interval, "interval", minimum=bounds.MIN_INTERVAL)

    def first_run(self, now: datetime) -> datetime | None:
        """``now + interval``."""
        return shift(aware_utc(now, "now"), self.interval)

    def next_after(self, after: datetime) -> datetime | None:
        """``after + interval``."""
        return shift(aware_utc(after, "after"), self.interval)

    def next_run(
        self,
        scheduled_at: datetime,
        now: datetime,
        catch_up: bool,
        started_at: datetime | None = None,
    ) -> datetime | None:
        """As :meth:`Schedule.next_run`, keeping the phase: ``scheduled_at + k * interval``."""
        scheduled_at = aware_utc(scheduled_at, "scheduled_at")
        now = aware_utc(now, "now")
        if catch_up:
            return shift(scheduled_at, self.interval)
        started = now if started_at is None else aware_utc(started_at, "started_at")
        try:
            steps = max((max(started, scheduled_at) - scheduled_at) // self.interval + 1, 1)
            following = scheduled_at + steps * self.interval
        except OverflowError:
            return None
        if following > now:
            return following
        return self.due_occurrence(following, now, catch_up=False)

    def due_occurrence(self, due: datetime, now: datetime, catch_up: bool) -> datetime:
        """``due`` with ``catch_up``; else the latest ``due + k * interval`` that is <= ``now``."""
        due = aware_utc(due, "due")
        now = aware_utc(now, "now")
        if catch_up or now <= due:
            return due
        return due + ((now - due) // self.interval) * self.interval

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "interval", "seconds": self.interval.total_seconds()}

    @property
    def description(self) -> str:
        return f"every {self.interval}"


@dataclass(frozen=True)
class OnceSchedule(Schedule):
    """A single run at ``execute_at`` (aware, stored as UTC; naive raises ``ValueError``)."""

    execute_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "execute_at", aware_utc(self.execute_at, "execute_at"))

    def first_run(self, now: datetime) -> datetime | None:
        """``execute_at``, even when it is already past: an overdue once-off runs at once."""
        aware_utc(now, "now")
        return self.execute_at

    def next_after(self, after: datetime) -> datetime | None:
        """Always ``None``: a once-off has nothing after its run."""
        aware_utc(after, "after")
        return None

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "once", "at": self.execute_at.isoformat()}

    @property
    def description(self) -> str:
        return f"once at {self.execute_at.isoformat()}"
