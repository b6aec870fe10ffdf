"""Cron expressions (5 fields, or 6 with seconds last, croniter's syntax) in a time zone, with DST.

Cron expressions have 5 fields (minute, hour, day of month, month, day of week) or 6, where the
sixth is **seconds** (croniter's convention): ``"* * * * * */10"`` runs every ten seconds, while
``"20 4 * * * *"`` runs every second from 04:20:00 to 04:20:59 (60 runs a day), and
``"*/10 * * * * *"`` every second of minutes 0, 10, 20, ... . When both the day of month and the day
of week are restricted, a day matching either runs (standard cron). Hashed (``H``) and random
(``R``) fields are refused: every process must compute the same times.

Daylight-saving time
--------------------
A cron with a time zone is evaluated in local wall-clock time, then converted to UTC. Where the
clocks jump forward, a wall time inside the gap (02:30 on the spring-forward night in New York) runs
once, at the first real instant after the gap (03:00 local), together with any other slot that falls
in the gap or on the gap's end: they coalesce into that one run. Where the clocks go back, a
repeated wall time runs once, at its first occurrence (01:30 summer time), so a fixed-time daily job
never runs twice; the one exception is an expression whose hour field is every hour (``*``): it
runs in both passes of the repeated hour, because those are distinct real hours, so ``0 * * * *``
runs once per real hour and ``*/5 * * * *`` never pauses for an hour. Time zone names: see
:mod:`celery_pyncette.schedules._zones`.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from croniter import CroniterBadDateError, croniter
from dateutil import tz as dateutil_tz

from celery_pyncette.schedules._base import SECOND, UTC, Schedule, aware_utc
from celery_pyncette.schedules._zones import parse_timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# croniter's field separators (ASCII whitespace only, like croniter itself).
_CRON_FIELD_RE = re.compile(r"[^ \t\n\r\f\v]+")
# Jenkins-style hashed ("H") and random ("R") fields: not reproducible across processes.
_HASHED_PART_RE = re.compile(r"[hr](\(\d+-\d+\))?(/\d+)?", re.IGNORECASE)
_CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_HOUR_FIELD = 1
# Validation asks for the first occurrence after this instant. A 5- or 6-field cron repeats every
# 400 years, and croniter searches 50 years ahead, longer than the widest gap between runs of a
# firing expression (a fifth Monday in February: up to 40 years), so "no run found" means "never".
_CRON_PROBE_START = datetime(2000, 1, 1)


def _parse_cron(expression: str) -> tuple[str, bool]:
    """Validate a cron expression; return it single-spaced, and whether its hour field is ``*``."""
    if not isinstance(expression, str):
        raise ValueError(f"a cron expression must be a string, got {expression!r}")
    return _validated_cron(expression)


@functools.lru_cache(maxsize=4096)
def _validated_cron(expression: str) -> tuple[str, bool]:
    """:func:`_parse_cron` of a string, remembered: validating takes croniter ~100 µs, and beat
    and workers rebuild the schedule of every stored instance they handle, most of them sharing
    a few expressions. An invalid expression raises every time (errors are not cached)."""
    fields = _CRON_FIELD_RE.findall(expression)
    normalised = " ".join(fields)
    is_alias = len(fields) == 1 and fields[0].lower() in _CRON_ALIASES
    if not is_alias and len(fields) not in (5, 6):
        raise ValueError(
            f"invalid cron expression {expression!r}: it has {len(fields)} fields; give 5 "
            "(minute hour day-of-month month day-of-week) or 6 (the same, then second)"
        )
    if any(_HASHED_PART_RE.fullmatch(part) for f in fields for part in f.split(",")):
        raise ValueError(
            f"invalid cron expression {expression!r}: hashed (H) and random (R) fields are not "
            "supported, every process must compute the same times"
        )
    try:
        probe = croniter(normalised, _CRON_PROBE_START, ret_type=datetime)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    try:
        probe.get_next()
    except CroniterBadDateError:
        raise ValueError(
            f"cron expression {expression!r} never fires: no date matches its day and month fields"
        ) from None
    return normalised, probe.expanded[_HOUR_FIELD] == ["*"]


_iterators = threading.local()


def _iterator(expression: str) -> croniter[datetime]:
    """This thread's croniter for a validated expression, to be moved with ``set_current``:
    building one parses the expression again (half the cost of finding the next time)."""
    cache: dict[str, croniter[datetime]] | None = getattr(_iterators, "cache", None)
    if cache is None:
        cache = _iterators.cache = {}
    it = cache.get(expression)
    if it is None:
        if len(cache) >= 4096:
            cache.clear()
        it = cache[expression] = croniter(expression, _CRON_PROBE_START, ret_type=datetime)
    return it


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A cron expression (5 fields, or 6 with seconds last) evaluated in ``timezone`` (UTC if None).

    ``expression`` is kept with its fields separated by single spaces. Raises ``ValueError`` at
    construction for a wrong number of fields, an unparsable or out-of-range field, an expression
    that can never fire (``"0 0 30 2 *"``), or an unknown time zone. Daylight-saving rules: see the
    module documentation.
    """

    expression: str
    timezone: str | None = None
    _zone: tzinfo = field(init=False, repr=False, compare=False)
    _every_hour: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expression, every_hour = _parse_cron(self.expression)
        if self.timezone is not None and not isinstance(self.timezone, str):
            raise ValueError(f"timezone must be a zone name, got {self.timezone!r}")
        zone = UTC if self.timezone is None else parse_timezone(self.timezone)
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_every_hour", every_hour)

    def first_run(self, now: datetime) -> datetime | None:
        """The first occurrence strictly after ``now``."""
        return self.next_after(now)

    def next_after(self, after: datetime) -> datetime | None:
        """The first occurrence strictly after ``after``; ``None`` past the end of the calendar."""
        after = aware_utc(after, "after")
        try:
            return self._next_instant(after)
        except OverflowError:
            return None

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "cron", "expression": self.expression, "timezone": self.timezone}

    @property
    def description(self) -> str:
        return f"cron '{self.expression}' ({self.timezone or 'UTC'})"

    def _next_instant(self, after: datetime) -> datetime | None:
        wall = after.astimezone(self._zone).replace(tzinfo=None)
        if self._offset_at(wall, fold=0) == self._offset_at(wall, fold=1):
            return self._resolve(self._next_wall(wall))
        # `after` lies in a span of wall time that the clocks go through twice.
        transition = self._transition_near(wall)
        fold_start = transition.replace(tzinfo=None) + self._offset(transition)
        fold_end = transition.replace(tzinfo=None) + self._offset(transition - SECOND)
        wall_next = self._next_wall(wall)
        if after < transition:  # the first pass
            if wall_next is not None and wall_next < fold_end:
                return self._instant(wall_next, fold=0)
            if self._every_hour:
                again = self._next_wall(fold_start - SECOND)
                if again is not None and again < fold_end:
                    return self._instant(again, fold=1)
            return self._resolve(wall_next)
        if wall_next is not None and wall_next < fold_end:  # the second pass
            if self._every_hour:
                return self._instant(wall_next, fold=1)
            wall_next = self._next_wall(fold_end - SECOND)
        return self._resolve(wall_next)

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The expression's first wall time strictly after the naive ``wall``."""
        # Slots are whole seconds, so dropping microseconds keeps "strictly after" exact and spares
        # croniter's float timestamps a rounding step.
        try:
            it = _iterator(self.expression)
            it.set_current(wall.replace(microsecond=0), force=True)
            result: datetime = it.get_next()
        except (OverflowError, ValueError):  # CroniterBadDateError, or past the year 9999
            return None
        return result

    def _resolve(self, wall: datetime | None) -> datetime | None:
        """The instant a wall time runs at: its first pass, or the gap's end for a skipped one."""
        if wall is None:
            return None
        if not dateutil_tz.datetime_exists(wall, self._zone):
            return self._transition_near(wall)
        return self._instant(wall, fold=0)

    def _instant(self, wall: datetime, fold: int) -> datetime:
        return wall.replace(tzinfo=self._zone, fold=fold).astimezone(UTC)

    def _offset_at(self, wall: datetime, fold: int) -> timedelta | None:
        return wall.replace(tzinfo=self._zone, fold=fold).utcoffset()

    def _offset(self, instant: datetime) -> timedelta:
        return instant.astimezone(self._zone).utcoffset() or timedelta(0)

    def _transition_near(self, wall: datetime) -> datetime:
        """The instant the UTC offset changes, for a wall time in a gap or in a repeated span."""
        # The two readings of such a wall time (fold 0 and 1) fall on either side of the change.
        before, after = sorted((self._instant(wall, fold=0), self._instant(wall, fold=1)))
        target = self._offset(after)
        # Bisect over whole seconds: zone transitions happen on whole UTC seconds.
        low = (before - _EPOCH) // SECOND
        high = -((_EPOCH - after) // SECOND)
        while high - low > 1:
            middle = (low + high) // 2
            if self._offset(_EPOCH + middle * SECOND) == target:
                high = middle
            else:
                low = middle
        return _EPOCH + high * SECOND
