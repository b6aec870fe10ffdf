"""The schedule contract: :class:`Schedule`, and the missed-run policy every schedule shares.

A schedule answers three questions, with aware datetimes in (a naive one raises ``ValueError``)
and aware UTC out:

- :meth:`Schedule.first_run`: when does a new instance created at ``now`` first run?
- :meth:`Schedule.next_after`: which occurrence comes strictly after a given instant?
- :meth:`Schedule.due_occurrence`: which occurrence runs now for an overdue instance (the missed-run
  policy: coalesce, or catch up one at a time)?

:meth:`Schedule.next_run` combines them into the next run after an occurrence ran. The time a
store keeps as an instance's next run is the time its occurrence is *sent*; it is the occurrence's
own (nominal) time except for a jittered schedule, whose :meth:`Schedule.nominal` recovers the
occurrence from it and whose :meth:`Schedule.bound_to` names the instance its offsets belong to
(both are the identity elsewhere). Subclasses
give :meth:`~Schedule.first_run`, :meth:`~Schedule.next_after`, :meth:`~Schedule.to_spec` and
:attr:`~Schedule.description`, and may replace the policy's search with arithmetic of their own.
"""

from __future__ import annotations

import abc
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc
SECOND = timedelta(seconds=1)
# The bisection in Schedule.due_occurrence stops at this precision, then steps forward.
_RESOLUTION = timedelta(microseconds=1)
_MAX_FORWARD_STEPS = 64


def aware_utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC; ``ValueError`` naming ``what`` when it is not an aware datetime."""
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def shift(instant: datetime, delta: timedelta) -> datetime | None:
    """``instant + delta``, or ``None`` past the end of the calendar."""
    try:
        return instant + delta
    except OverflowError:
        return None


class Schedule(abc.ABC):
    """When an instance runs. All datetimes in and out are aware UTC (``datetime.timezone.utc``)."""

    @abc.abstractmethod
    def first_run(self, now: datetime) -> datetime | None:
        """The first occurrence of a new instance created at ``now``."""

    @abc.abstractmethod
    def next_after(self, after: datetime) -> datetime | None:
        """The first occurrence strictly after ``after``; ``None`` when there is none."""

    def next_run(
        self,
        scheduled_at: datetime,
        now: datetime,
        catch_up: bool,
        started_at: datetime | None = None,
    ) -> datetime | None:
        """The next run after the occurrence ``scheduled_at`` ran (started ``started_at``, committed
        ``now``; ``started_at`` defaults to ``now``).

        ``catch_up=True`` replays every missed occurrence, one at a time:
        ``next_after(scheduled_at)``. ``catch_up=False`` coalesces missed occurrences: those that
        fell before the run started are covered by the run itself (the schedule continues after
        ``started_at``), and those that fell while it ran become one more run, due at once (the
        latest of them). The cost does not depend on how many were missed.
        """
        scheduled_at = aware_utc(scheduled_at, "scheduled_at")
        now = aware_utc(now, "now")
        if catch_up:
            return self.next_after(scheduled_at)
        started = now if started_at is None else aware_utc(started_at, "started_at")
        following = self.next_after(max(scheduled_at, started))
        if following is None or following > now:
            return following
        return self.due_occurrence(following, now, catch_up=False)

    def due_occurrence(self, due: datetime, now: datetime, catch_up: bool) -> datetime:
        """The latest occurrence in ``[due, now]``, where ``due`` is an occurrence (``due`` itself
        with ``catch_up``, or when none follows it by ``now``).

        The search takes O(log((now - due) / 1 µs)) calls of :meth:`next_after`, however many
        occurrences were missed.
        """
        due = aware_utc(due, "due")
        now = aware_utc(now, "now")
        if catch_up:
            return due
        latest = due
        following = self.next_after(latest)
        if following is None or following > now:
            return latest
        # Bisect for the latest occurrence <= now: next_after is monotonic, so if an occurrence
        # follows `middle` within `now`, the latest one is at or after it; otherwise before it.
        low, high = following, now
        latest = following
        while high - low > _RESOLUTION:
            middle = low + (high - low) / 2
            found = self.next_after(middle)
            if found is not None and found <= now:
                latest = low = found
            else:
                high = middle
        for _ in range(_MAX_FORWARD_STEPS):
            found = self.next_after(latest)
            if found is None or found > now:
                break
            latest = found
        return latest

    def nominal(self, due_at: datetime) -> datetime:
        """The occurrence a stored next run ``due_at`` sends (the time ``context.scheduled_at``
        shows); ``due_at`` itself unless the schedule sends its occurrences late (jitter)."""
        return due_at

    def send_after(self, after: datetime) -> datetime | None:
        """The first instant strictly after ``after`` at which an occurrence is sent (beat's
        wake-up time); :meth:`next_after` unless the schedule sends its occurrences late."""
        return self.next_after(after)

    def bound_to(self, task: str, instance: str | None) -> Schedule:
        """This schedule as it runs for one instance (``None``: a static task). Only a jittered
        schedule depends on it (its offsets are derived from the instance); others are returned
        as they are."""
        return self

    @abc.abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """A JSON-serialisable description; :func:`schedule_from_spec` inverts it."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Human-readable text, for logs, the CLI and the dashboard."""
