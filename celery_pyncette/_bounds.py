"""Bounds on user-given durations and time zones, checked before anything is written.

* Every duration (``pyncette_lease_duration``, ``pyncette_poll_interval``, a task's
  ``lease_duration``, an ``interval``) is at most :data:`MAX_DURATION` (ten years): longer ones are
  a mistake (``1e12`` seconds would overflow every claim's ``now + lease``), and huge floats
  (``1e300``) would raise ``OverflowError`` deep inside ``datetime`` instead of naming the setting.
* An ``interval`` is at least :data:`MIN_INTERVAL` (one millisecond); a shorter one would make a
  single instance due on every tick, forever.
* A time zone must mean the same on every machine: ``"localtime"``, ``"posixrules"`` and any name
  that ``dateutil`` resolves to the machine's own zone (``tzlocal``) are refused, because several
  beats on differently configured machines would compute different runs.
"""

from __future__ import annotations

import math
from datetime import timedelta, tzinfo

from dateutil import tz as dateutil_tz

#: Longest duration accepted anywhere (leases, poll interval, intervals).
MAX_DURATION = timedelta(days=3653)
#: Shortest interval of an interval schedule.
MIN_INTERVAL = timedelta(milliseconds=1)
#: Zone names that stand for the machine's own zone, whatever their file says.
MACHINE_LOCAL_ZONES = frozenset({"localtime", "posixrules"})


def seconds(value: float, what: str) -> timedelta:
    """``value`` seconds as a ``timedelta``; ``ValueError`` naming ``what`` when it is not a finite
    positive number of at most :data:`MAX_DURATION`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be positive and finite, got {value!r} seconds")
    if value > MAX_DURATION.total_seconds():
        raise ValueError(
            f"{what} of {value!r} seconds is longer than the maximum of "
            f"{MAX_DURATION.days} days ({MAX_DURATION.total_seconds():.0f} s)"
        )
    return timedelta(seconds=value)


def check_duration(value: timedelta, what: str, minimum: timedelta | None = None) -> timedelta:
    """Return ``value`` if it lies in ``(0, MAX_DURATION]`` (and ``>= minimum``); else
    ``ValueError`` naming ``what``."""
    if value <= timedelta(0):
        raise ValueError(f"{what} must be positive, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(
            f"{what} must be at least {minimum.total_seconds() * 1000:g} ms, got {value}"
        )
    if value > MAX_DURATION:
        raise ValueError(
            f"{what} of {value} is longer than the maximum of {MAX_DURATION.days} days"
        )
    return value


def check_portable_zone(name: str, zone: tzinfo) -> tzinfo:
    """Return ``zone`` unless ``name`` stands for the machine's local zone (``ValueError``)."""
    if name.lower() in MACHINE_LOCAL_ZONES or isinstance(zone, dateutil_tz.tzlocal):
        raise ValueError(
            f"time zone {name!r} is this machine's local zone, which differs between machines; "
            "give a zone name such as 'Europe/Dublin' or 'UTC'"
        )
    return zone
