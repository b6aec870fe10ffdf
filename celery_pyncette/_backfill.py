"""Backfill's arithmetic: the occurrences a schedule had in a past window, and the ledger of the
windows already backfilled (so a second backfill of a window runs nothing again).

A window is half-open, ``[start, end)``: an occurrence at ``start`` is in it, one at ``end`` is
not, so two adjacent windows never share an occurrence. The ledger of one instance is a list of
disjoint windows, merged as they are added and kept to the :data:`MAX_WINDOWS` latest ones; it
lives in one of the library's own records (:func:`celery_pyncette._records.backfill_record`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette.schedules import IntervalSchedule, Schedule

#: The most occurrences one backfill runs unless told otherwise (``max=`` / ``--max``).
DEFAULT_MAX = 1000
#: The disjoint windows a ledger keeps (the earliest are forgotten first); ~10 KB as JSON.
MAX_WINDOWS = 100

_TICK = timedelta(microseconds=1)

#: A window as ``(start, end)``, aware UTC.
Window = tuple[datetime, datetime]


def check_window(start: Any, end: Any, limit: Any, now: datetime) -> Window:
    """The window ``[start, end)`` as UTC, ``end`` clamped to ``now`` (what is not yet due is the
    schedule's own). ``ValueError`` naming the problem: a value that is not an aware datetime,
    ``start`` not before ``end``, ``start`` not in the past, ``limit`` not a positive integer."""
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            raise ValueError(f"{name} must be an aware datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max must be a positive integer, got {limit!r}")
    begin, finish = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if begin >= finish:
        raise ValueError(f"start ({begin.isoformat()}) must be before end ({finish.isoformat()})")
    if begin >= now:
        raise ValueError(
            f"start ({begin.isoformat()}) is not in the past (now is {now.isoformat()}): "
            "a backfill runs occurrences that are over"
        )
    return begin, min(finish, now)


def occurrences(
    schedule: Schedule, window: Window, limit: int, anchor: datetime | None = None
) -> list[datetime]:
    """The occurrences of ``schedule`` in ``window``, in order; ``ValueError`` when there are more
    than ``limit`` (found without computing more than ``limit + 1`` of them).

    An interval has no calendar of its own: its occurrences are those of the instance, a whole
    number of intervals from ``anchor`` (the stored next run; without one, from the window's
    start)."""
    start, end = window
    found: list[datetime] = []
    at = schedule.next_after(start - _TICK)
    if isinstance(schedule, IntervalSchedule) and anchor is not None:
        step = schedule.interval
        at = anchor + step * -((anchor - start) // step)
    while at is not None and at < end:
        if len(found) == limit:
            raise ValueError(
                f"the window {start.isoformat()} to {end.isoformat()} holds more than {limit} "
                f"occurrences of {schedule.description}; pass a larger max to run them all"
            )
        found.append(at)
        at = schedule.next_after(at)
    return found


def read_windows(args: Mapping[str, Any] | None) -> list[Window]:
    """The windows a ledger record's args hold (none for no record)."""
    if not args:
        return []
    return [
        (datetime.fromisoformat(start), datetime.fromisoformat(end))
        for start, end in args.get("windows") or ()
    ]


def covered(at: datetime, windows: Iterable[Window]) -> bool:
    """True when a backfilled window holds the occurrence ``at``."""
    return any(start <= at < end for start, end in windows)


def merged(windows: Sequence[Window], added: Window) -> list[Window]:
    """``windows`` with ``added``: overlapping and touching windows merged, sorted, at most
    :data:`MAX_WINDOWS` (the latest)."""
    result: list[Window] = []
    for start, end in sorted([*windows, added]):
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(end, result[-1][1]))
        else:
            result.append((start, end))
    return result[-MAX_WINDOWS:]


def stored_windows(windows: Sequence[Window]) -> list[list[str]]:
    """``windows`` as a ledger record stores them (ISO texts)."""
    return [[start.isoformat(), end.isoformat()] for start, end in windows]
