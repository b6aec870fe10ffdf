"""Next-run arithmetic: cron (with seconds), fixed intervals, once-off runs, Celery schedules.

Every datetime passed in must be aware (a naive one raises ``ValueError``); every datetime returned
is aware UTC. A :class:`Schedule` answers three questions:

- :meth:`Schedule.first_run`: when does a new instance created at ``now`` first run?
- :meth:`Schedule.next_after`: which occurrence comes strictly after a given instant?
- :meth:`Schedule.due_occurrence`: which occurrence runs now for an overdue instance (the missed-run
  policy: coalesce, or catch up one at a time)?

Schedules are values: equal when their specs are equal, and :func:`schedule_from_spec` rebuilds one
from :meth:`Schedule.to_spec`, the JSON form the stores keep.

Cron expressions have 5 fields (minute, hour, day of month, month, day of week) or 6, where the
sixth is **seconds** (croniter's convention): ``"* * * * * */10"`` runs every ten seconds, while
``"20 4 * * * *"`` runs every second from 04:20:00 to 04:20:59 (60 runs a day), and
``"*/10 * * * * *"`` every second of minutes 0, 10, 20, ... . When both the day of month and the day
of week are restricted, a day matching either runs (standard cron).

Daylight-saving time
--------------------
A cron with a time zone is evaluated in local wall-clock time, then converted to UTC. Where the
clocks jump forward, a wall time inside the gap (02:30 on the spring-forward night in New York) runs
once, at the first real instant after the gap (03:00 local), together with any other slot that falls
in the gap or on the gap's end: they coalesce into that one run. Where the clocks go back, a
repeated wall time runs once, at its first occurrence (01:30 summer time), so a fixed-time daily job
never runs twice; the one exception is an expression whose hour field is every hour (``*``): it
runs in both passes of the repeated hour, because those are distinct real hours, so ``0 * * * *``
runs once per real hour and ``*/5 * * * *`` never pauses for an hour. Time zones are IANA names
resolved with :mod:`zoneinfo` (which applies each zone's rules for every year, unlike
``dateutil``'s file reader, which stops at 2037 and misreads Europe/Dublin's negative DST); other
names that :func:`dateutil.tz.gettz` understands, such as ``"UTC+12"`` (twelve hours *ahead* of
UTC, dateutil's reading, not POSIX's), are accepted too.
"""

from __future__ import annotations

import abc
import functools
import math
import re
import threading
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from celery import schedules as celery_schedules
from croniter import CroniterBadDateError, croniter
from dateutil import tz as dateutil_tz

from celery_pyncette import bounds, celery_spec

__all__ = [
    "CelerySchedule",
    "CronSchedule",
    "IntervalSchedule",
    "OnceSchedule",
    "Schedule",
    "from_celery",
    "parse_timezone",
    "schedule_from_spec",
]

UTC = timezone.utc
# The bisection in Schedule.due_occurrence stops at this precision, then steps forward.
_RESOLUTION = timedelta(microseconds=1)
_MAX_FORWARD_STEPS = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

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

# A Celery schedule that is not due when it says it would be is re-checked when it asks; this many
# checks without a due time end the search (None: no further occurrence).
_MAX_CELERY_CHECKS = 1000
_CELERY_LOCK = threading.RLock()
_MISSING = object()


def parse_timezone(name: str) -> tzinfo:
    """Resolve a time zone name to a ``tzinfo``.

    IANA names (``"Europe/Dublin"``, ``"UTC"``) come from :mod:`zoneinfo`; anything else that
    :func:`dateutil.tz.gettz` resolves (``"UTC+12"``, ``"EST5EDT,M3.2.0,M11.1.0"``) is accepted as
    well. Raises ``ValueError`` naming the zone when it is unknown, empty, or a file path (the local
    zone is machine-dependent, so ``""`` and ``"localtime"`` are refused: see :mod:`bounds`).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a time zone name must be a non-empty string, got {name!r}")
    if name != name.strip() or name.startswith((":", "/")) or ".." in name or "\\" in name:
        raise ValueError(f"unknown time zone {name!r}: give a zone name such as 'Europe/Dublin'")
    try:
        return bounds.check_portable_zone(name, zoneinfo.ZoneInfo(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    try:
        zone = dateutil_tz.gettz(name)
    except (ValueError, OSError):
        zone = None
    if zone is None:
        raise ValueError(f"unknown time zone {name!r}")
    return bounds.check_portable_zone(name, zone)


def _aware_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _shift(instant: datetime, delta: timedelta) -> datetime | None:
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
        scheduled_at = _aware_utc(scheduled_at, "scheduled_at")
        now = _aware_utc(now, "now")
        if catch_up:
            return self.next_after(scheduled_at)
        started = now if started_at is None else _aware_utc(started_at, "started_at")
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
        due = _aware_utc(due, "due")
        now = _aware_utc(now, "now")
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

    @abc.abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """A JSON-serialisable description; :func:`schedule_from_spec` inverts it."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Human-readable text, for logs, the CLI and the dashboard."""


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
        after = _aware_utc(after, "after")
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
        fold_end = transition.replace(tzinfo=None) + self._offset(transition - _SECOND)
        wall_next = self._next_wall(wall)
        if after < transition:  # the first pass
            if wall_next is not None and wall_next < fold_end:
                return self._instant(wall_next, fold=0)
            if self._every_hour:
                again = self._next_wall(fold_start - _SECOND)
                if again is not None and again < fold_end:
                    return self._instant(again, fold=1)
            return self._resolve(wall_next)
        if wall_next is not None and wall_next < fold_end:  # the second pass
            if self._every_hour:
                return self._instant(wall_next, fold=1)
            wall_next = self._next_wall(fold_end - _SECOND)
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
        low = (before - _EPOCH) // _SECOND
        high = -((_EPOCH - after) // _SECOND)
        while high - low > 1:
            middle = (low + high) // 2
            if self._offset(_EPOCH + middle * _SECOND) == target:
                high = middle
            else:
                low = middle
        return _EPOCH + high * _SECOND


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
        return _shift(_aware_utc(now, "now"), self.interval)

    def next_after(self, after: datetime) -> datetime | None:
        """``after + interval``."""
        return _shift(_aware_utc(after, "after"), self.interval)

    def next_run(
        self,
        scheduled_at: datetime,
        now: datetime,
        catch_up: bool,
        started_at: datetime | None = None,
    ) -> datetime | None:
        """As :meth:`Schedule.next_run`, keeping the phase: ``scheduled_at + k * interval``."""
        scheduled_at = _aware_utc(scheduled_at, "scheduled_at")
        now = _aware_utc(now, "now")
        if catch_up:
            return _shift(scheduled_at, self.interval)
        started = now if started_at is None else _aware_utc(started_at, "started_at")
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
        due = _aware_utc(due, "due")
        now = _aware_utc(now, "now")
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
        object.__setattr__(self, "execute_at", _aware_utc(self.execute_at, "execute_at"))

    def first_run(self, now: datetime) -> datetime | None:
        """``execute_at``, even when it is already past: an overdue once-off runs at once."""
        _aware_utc(now, "now")
        return self.execute_at

    def next_after(self, after: datetime) -> datetime | None:
        """Always ``None``: a once-off has nothing after its run."""
        _aware_utc(after, "after")
        return None

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "once", "at": self.execute_at.isoformat()}

    @property
    def description(self) -> str:
        return f"once at {self.execute_at.isoformat()}"


@dataclass(frozen=True, eq=False)
class CelerySchedule(Schedule):
    """A Celery schedule object (``celery.schedules.solar``, or any ``BaseSchedule`` with its own
    arithmetic), run through its own ``remaining_estimate`` and ``is_due``.

    :meth:`next_after` replays what Celery beat would do with ``last_run_at = after``: it jumps to
    ``after + remaining_estimate(after)`` (at least one second later) and, while the object's
    ``is_due`` says "not yet", waits as long as it asks (at least one second), with the object's
    clock pinned to each instant considered; after 1000 checks without a due time it gives up with
    ``None``. Its spec is a stable description, not its ``repr`` (:mod:`celery_spec`; ValueError
    when it has none); equal specs, equal wrappers; :func:`schedule_from_spec` cannot rebuild one.
    """

    schedule: Any

    def __post_init__(self) -> None:
        missing = [
            name
            for name in ("remaining_estimate", "is_due")
            if not callable(getattr(self.schedule, name, None))
        ]
        if missing:
            raise ValueError(
                f"{type(self.schedule).__name__} is not a Celery schedule: no {', '.join(missing)}"
            )
        self.to_spec()  # refuses, naming why, a schedule that cannot be described stably

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CelerySchedule):
            return NotImplemented
        return self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))  # describe() builds it in a fixed order

    def first_run(self, now: datetime) -> datetime | None:
        """The first occurrence strictly after ``now``."""
        return self.next_after(now)

    def next_after(self, after: datetime) -> datetime | None:
        after = _aware_utc(after, "after")
        with _CELERY_LOCK:
            return self._replay_beat(after)

    def to_spec(self) -> dict[str, Any]:
        with _CELERY_LOCK:  # not while _replay_beat has pinned the object's clock
            return celery_spec.describe(self.schedule)

    @property
    def description(self) -> str:
        return f"celery {celery_spec.label(self.schedule)}"

    def _replay_beat(self, last_run_at: datetime) -> datetime | None:
        obj = self.schedule
        clock = [last_run_at]
        saved = vars(obj).get("nowfun", _MISSING)
        obj.nowfun = lambda: clock[0]
        try:
            candidate = last_run_at + max(
                _as_timedelta(obj.remaining_estimate(last_run_at)), _SECOND
            )
            for _ in range(_MAX_CELERY_CHECKS):
                clock[0] = candidate
                due, wait = obj.is_due(last_run_at)
                if due:
                    return candidate.astimezone(UTC)
                candidate += max(_as_timedelta(wait), _SECOND)
        except OverflowError:
            return None
        finally:
            if saved is _MISSING:
                del obj.nowfun
            else:
                obj.nowfun = saved
        return None


def _as_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return timedelta(seconds=value)
    raise ValueError(f"a Celery schedule returned {value!r} where a duration was expected")


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_spec`. Raises ``ValueError`` on a malformed spec.

    Keys a kind does not use are ignored; a ``"celery"`` spec cannot be rebuilt (it holds only the
    object's ``repr``) and raises ``ValueError`` too.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"a schedule spec must be a mapping, got {spec!r}")
    kind = spec.get("kind")
    if kind == "cron":
        expression = spec.get("expression")
        zone = spec.get("timezone")
        if not isinstance(expression, str):
            raise ValueError(f"cron spec needs a string 'expression', got {spec!r}")
        if zone is not None and not isinstance(zone, str):
            raise ValueError(f"cron spec 'timezone' must be a string or null, got {spec!r}")
        return CronSchedule(expression, zone)
    if kind == "interval":
        seconds = spec.get("seconds")
        # Decimal: what DynamoDB returns for a number.
        if not isinstance(seconds, (int, float, Decimal)) or isinstance(seconds, bool):
            raise ValueError(f"interval spec needs a number of 'seconds', got {spec!r}")
        if not math.isfinite(seconds):
            raise ValueError(f"interval spec 'seconds' must be finite, got {spec!r}")
        try:
            interval = timedelta(seconds=float(seconds))
        except OverflowError:
            raise ValueError(f"interval spec 'seconds' is out of range: {spec!r}") from None
        return IntervalSchedule(interval)
    if kind == "once":
        at = spec.get("at")
        if not isinstance(at, str):
            raise ValueError(f"once spec needs an ISO 8601 'at', got {spec!r}")
        try:
            # Python 3.10's fromisoformat does not read a trailing "Z".
            execute_at = datetime.fromisoformat(at[:-1] + "+00:00" if at.endswith("Z") else at)
        except ValueError:
            raise ValueError(f"once spec 'at' is not an ISO 8601 datetime: {at!r}") from None
        return OnceSchedule(execute_at)
    if kind == "celery":
        what = spec.get("class", spec.get("repr"))
        raise ValueError(f"a Celery schedule ({what!r}) cannot be rebuilt: it is declared in code")
    raise ValueError(f"unknown schedule kind {kind!r} in spec {spec!r}")


def from_celery(obj: object, app: Any | None = None) -> Schedule:
    """Convert an ``app.conf.beat_schedule`` entry's ``schedule`` to a :class:`Schedule`.

    - ``celery.schedules.crontab`` → :class:`CronSchedule` in the crontab's own time zone if it
      has one (an instance attribute ``tz``), else its app's (the crontab's own app, else ``app``,
      else Celery's current app): ``conf.timezone``, or UTC when ``conf.enable_utc``. Celery
      matches a day only when it satisfies both ``day_of_month`` and ``day_of_week``, and cron when
      it satisfies either; a crontab restricting both is therefore wrapped in a
      :class:`CelerySchedule` instead, so it keeps Celery's meaning.
    - ``celery.schedules.schedule``, a ``timedelta`` or a number of seconds →
      :class:`IntervalSchedule`.
    - ``celery.schedules.solar`` and any other ``BaseSchedule`` → :class:`CelerySchedule`, as is a
      subclass of ``crontab`` or ``schedule`` that replaces their arithmetic.
    - a :class:`Schedule` is returned as is.

    Raises ``ValueError`` naming the type for anything else, and for a crontab on Celery's local
    time (``enable_utc=False`` without ``timezone``), whose zone has no name to store.
    """
    if isinstance(obj, Schedule):
        return obj
    if isinstance(obj, bool):
        raise ValueError(f"cannot use a bool as a schedule: {obj!r}")
    if isinstance(obj, (int, float)):
        return IntervalSchedule(bounds.seconds(obj, "a schedule in seconds"))
    if isinstance(obj, timedelta):
        return IntervalSchedule(obj)
    if isinstance(obj, celery_schedules.crontab) and _keeps_arithmetic(
        obj, celery_schedules.crontab, ("remaining_estimate", "remaining_delta", "is_due")
    ):
        if _restricted(obj.day_of_month, 1, 31) and _restricted(obj.day_of_week, 0, 6):
            return CelerySchedule(obj)
        return CronSchedule(_crontab_expression(obj), _crontab_zone_name(obj, app))
    if isinstance(obj, celery_schedules.schedule) and _keeps_arithmetic(
        obj, celery_schedules.schedule, ("remaining_estimate", "is_due")
    ):
        return IntervalSchedule(obj.run_every)
    if isinstance(obj, celery_schedules.BaseSchedule):
        return CelerySchedule(obj)
    raise ValueError(
        f"cannot schedule a {type(obj).__module__}.{type(obj).__qualname__}: give a crontab, "
        "schedule, solar, timedelta or number of seconds"
    )


def _keeps_arithmetic(obj: object, base: type, methods: tuple[str, ...]) -> bool:
    return all(getattr(type(obj), name, None) is getattr(base, name) for name in methods)


def _restricted(values: set[int], low: int, high: int) -> bool:
    return set(values) != set(range(low, high + 1))


def _crontab_expression(obj: Any) -> str:
    return " ".join(
        (
            _cron_field(obj.minute, 0, 59),
            _cron_field(obj.hour, 0, 23),
            _cron_field(obj.day_of_month, 1, 31),
            _cron_field(obj.month_of_year, 1, 12),
            # Celery counts days of the week from Sunday = 0, like cron.
            _cron_field(obj.day_of_week, 0, 6),
        )
    )


def _cron_field(values: set[int], low: int, high: int) -> str:
    """The shortest of ``*``, ``*/step`` and a list of values and ranges for a set of values."""
    ordered = sorted(set(values))
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) > 2 and ordered[0] == low:
        step = ordered[1] - ordered[0]
        if ordered == list(range(low, high + 1, step)):
            return f"*/{step}"
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start >= 2:
            parts.append(f"{start}-{previous}")
        else:
            parts.extend(str(v) for v in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _crontab_zone_name(obj: Any, app: Any | None) -> str:
    own = vars(obj).get("tz")
    if own is not None:
        return _zone_name(own)
    app = getattr(obj, "_app", None) or app or obj.app
    configured = app.conf.timezone
    if configured:
        return _zone_name(configured)
    if app.conf.enable_utc:
        return "UTC"
    raise ValueError(
        "a crontab on Celery's local time (enable_utc=False and no timezone) has no zone name to "
        "store; set app.conf.timezone, e.g. 'Europe/Dublin'"
    )


def _zone_name(zone: object) -> str:
    """A name :func:`parse_timezone` resolves to ``zone`` (a name, or a tzinfo from zoneinfo, pytz,
    dateutil or :mod:`datetime`)."""
    if isinstance(zone, str):
        parse_timezone(zone)
        return zone
    name: object = None
    if zone is UTC or isinstance(zone, dateutil_tz.tzutc):
        name = "UTC"
    elif isinstance(zone, timezone):
        offset = zone.utcoffset(None)
        sign = "-" if offset < timedelta(0) else "+"
        hours, rest = divmod(abs(offset), timedelta(hours=1))
        name = f"UTC{sign}{hours}:{rest // timedelta(minutes=1):02d}"
    else:
        name = getattr(zone, "key", None) or getattr(zone, "zone", None)
    if not isinstance(name, str):
        raise ValueError(
            f"cannot name the time zone {zone!r}; set app.conf.timezone to a zone name"
        )
    parse_timezone(name)
    return name
