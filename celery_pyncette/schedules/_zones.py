"""Time zone names: resolving one to a ``tzinfo``, and naming a ``tzinfo`` so it can be stored.

Time zones are IANA names resolved with :mod:`zoneinfo` (which applies each zone's rules for every
year, unlike ``dateutil``'s file reader, which stops at 2037 and misreads Europe/Dublin's negative
DST); other names that :func:`dateutil.tz.gettz` understands, such as ``"UTC+12"`` (twelve hours
*ahead* of UTC, dateutil's reading, not POSIX's), are accepted too. The machine's local zone is
refused (see :mod:`celery_pyncette._bounds`): every process must compute the same times.
"""

from __future__ import annotations

import zoneinfo
from datetime import timedelta, timezone, tzinfo

from dateutil import tz as dateutil_tz

from celery_pyncette import _bounds as bounds
from celery_pyncette.schedules._base import UTC


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


def zone_name(zone: object) -> str:
    """A name :func:`parse_timezone` resolves to ``zone`` (a name, or a tzinfo from zoneinfo, pytz,
    dateutil or :mod:`datetime`); ``ValueError`` when it has none."""
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
