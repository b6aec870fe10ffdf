"""``beat_schedule`` entries' schedules as :class:`Schedule` values, and :func:`zoned`.

:func:`from_celery` turns a Celery ``crontab`` into a :class:`CronSchedule` (in the crontab's own
zone, else its app's), an interval into an :class:`IntervalSchedule`, and any other Celery schedule
object into a :class:`CelerySchedule`. :func:`zoned` gives a crontab a zone of its own, and
:func:`bounded` any entry's schedule bounds: the code ``celery pyncette import`` generates calls
them, so their names and signatures are stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import schedules as celery_schedules

from celery_pyncette import _bounds as bounds
from celery_pyncette.schedules._base import Schedule
from celery_pyncette.schedules._celery import CelerySchedule
from celery_pyncette.schedules._cron import CronSchedule
from celery_pyncette.schedules._interval import IntervalSchedule
from celery_pyncette.schedules._window import BoundedSchedule
from celery_pyncette.schedules._zones import parse_timezone, zone_name


def zoned(schedule: celery_schedules.crontab, zone: str) -> celery_schedules.crontab:
    """Evaluate a Celery ``crontab`` in ``zone`` instead of the app's time zone; return it.

    The runtime dependency of the modules ``celery pyncette import`` generates, for a
    django-celery-beat crontab whose own time zone differs from the app's: they import it from
    ``celery_pyncette.schedules``. Both Celery and celery-pyncette honour the crontab's ``tz``
    attribute, which this sets. Raises ``ValueError`` for an unknown zone.
    """
    schedule.tz = parse_timezone(zone)
    return schedule


@dataclass(frozen=True)
class BeatBounds:
    """A ``beat_schedule`` entry's schedule with bounds, as :func:`bounded` makes it."""

    schedule: object
    start_at: datetime | None = None
    end_at: datetime | None = None


def bounded(
    schedule: object, *, start_at: datetime | None = None, end_at: datetime | None = None
) -> BeatBounds:
    """A ``beat_schedule`` entry's ``schedule`` with no occurrence before ``start_at`` or after
    ``end_at`` (aware datetimes); :func:`from_celery` makes it a
    :class:`~celery_pyncette.schedules.BoundedSchedule`.

    What the modules ``celery pyncette import`` generates use for django-celery-beat's
    ``start_time`` and ``expires``. Only this scheduler understands it (Celery's own beat does
    not). Raises ``ValueError`` for a naive bound or ``end_at`` not after ``start_at``.
    """
    checked = BoundedSchedule(IntervalSchedule(timedelta(seconds=1)), start_at, end_at)
    return BeatBounds(schedule, checked.start_at, checked.end_at)


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
    - a :class:`Schedule` is returned as is;
    - :func:`bounded` → the conversion of its schedule in a :class:`BoundedSchedule`.

    Raises ``ValueError`` naming the type for anything else, and for a crontab on Celery's local
    time (``enable_utc=False`` without ``timezone``), whose zone has no name to store.
    """
    if isinstance(obj, Schedule):
        return obj
    if isinstance(obj, BeatBounds):
        return BoundedSchedule(from_celery(obj.schedule, app), obj.start_at, obj.end_at)
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
        return zone_name(own)
    app = getattr(obj, "_app", None) or app or obj.app
    configured = app.conf.timezone
    if configured:
        return zone_name(configured)
    if app.conf.enable_utc:
        return "UTC"
    raise ValueError(
        "a crontab on Celery's local time (enable_utc=False and no timezone) has no zone name to "
        "store; set app.conf.timezone, e.g. 'Europe/Dublin'"
    )
