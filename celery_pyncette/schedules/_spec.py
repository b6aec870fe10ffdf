"""The stored form of a schedule (an instance record's ``spec``), read back in this one place.

Each schedule's :meth:`~Schedule.to_spec` writes its form; records already in stores hold these, so
the format never changes (keys a kind does not use are ignored):

- ``{"kind": "cron", "expression": "0 9 * * *", "timezone": "Europe/Dublin"}`` (``timezone`` may
  be ``null``: UTC);
- ``{"kind": "interval", "seconds": 60.0}`` (a number; DynamoDB gives back a ``Decimal``);
- ``{"kind": "once", "at": "2030-01-01T09:00:00+00:00"}`` (ISO 8601; a trailing ``Z`` is read too);
- ``{"kind": "celery", "class": "...", ...}``: the stable description of a Celery schedule object
  (:mod:`celery_pyncette.schedules._celery_spec`), compared with the code's, never rebuilt.

:func:`schedule_from_spec` rebuilds the schedule, validated: a ``ValueError`` marks a record that
cannot run (the caller quarantines it). :func:`read_spec` reads the fields only, for views of
stored records (``TaskState``), which show what is stored even when it no longer validates (a cron
expression a newer croniter refuses).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from celery_pyncette.schedules._base import Schedule
from celery_pyncette.schedules._cron import CronSchedule
from celery_pyncette.schedules._interval import IntervalSchedule, OnceSchedule


@dataclass(frozen=True, slots=True)
class StoredSpec:
    """The fields of a stored spec, decoded but not validated as a schedule; ``None`` where the
    kind has no such field (``kind`` is ``None`` when the spec names none)."""

    kind: str | None
    expression: str | None = None
    timezone: str | None = None
    interval: timedelta | None = None
    execute_at: datetime | None = None


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_spec`. Raises ``ValueError`` on a malformed spec.

    Keys a kind does not use are ignored; a ``"celery"`` spec cannot be rebuilt (it holds only a
    description of the object) and raises ``ValueError`` too.
    """
    kind = _kind(spec)
    if kind == "cron":
        return CronSchedule(*_cron_fields(spec))
    if kind == "interval":
        return IntervalSchedule(_interval(spec))
    if kind == "once":
        return OnceSchedule(_execute_at(spec))
    if kind == "celery":
        what = spec.get("class", spec.get("repr"))
        raise ValueError(f"a Celery schedule ({what!r}) cannot be rebuilt: it is declared in code")
    raise ValueError(f"unknown schedule kind {kind!r} in spec {spec!r}")


def read_spec(spec: Mapping[str, Any]) -> StoredSpec:
    """The fields of a stored spec, without validating the schedule they describe (an invalid cron
    expression is read as it is). Raises ``ValueError`` when a field has the wrong type or form,
    with :func:`schedule_from_spec`'s message."""
    kind = _kind(spec)
    if kind == "cron":
        expression, zone = _cron_fields(spec)
        return StoredSpec(kind, expression=expression, timezone=zone)
    if kind == "interval":
        return StoredSpec(kind, interval=_interval(spec))
    if kind == "once":
        return StoredSpec(kind, execute_at=_execute_at(spec))
    return StoredSpec(kind if isinstance(kind, str) else None)


def _kind(spec: Mapping[str, Any]) -> Any:
    if not isinstance(spec, Mapping):
        raise ValueError(f"a schedule spec must be a mapping, got {spec!r}")
    return spec.get("kind")


def _cron_fields(spec: Mapping[str, Any]) -> tuple[str, str | None]:
    expression = spec.get("expression")
    zone = spec.get("timezone")
    if not isinstance(expression, str):
        raise ValueError(f"cron spec needs a string 'expression', got {spec!r}")
    if zone is not None and not isinstance(zone, str):
        raise ValueError(f"cron spec 'timezone' must be a string or null, got {spec!r}")
    return expression, zone


def _interval(spec: Mapping[str, Any]) -> timedelta:
    seconds = spec.get("seconds")
    # Decimal: what DynamoDB returns for a number.
    if not isinstance(seconds, (int, float, Decimal)) or isinstance(seconds, bool):
        raise ValueError(f"interval spec needs a number of 'seconds', got {spec!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"interval spec 'seconds' must be finite, got {spec!r}")
    try:
        return timedelta(seconds=float(seconds))
    except OverflowError:
        raise ValueError(f"interval spec 'seconds' is out of range: {spec!r}") from None


def _execute_at(spec: Mapping[str, Any]) -> datetime:
    at = spec.get("at")
    if not isinstance(at, str):
        raise ValueError(f"once spec needs an ISO 8601 'at', got {spec!r}")
    try:
        # Python 3.10's fromisoformat does not read a trailing "Z".
        return datetime.fromisoformat(at[:-1] + "+00:00" if at.endswith("Z") else at)
    except ValueError:
        raise ValueError(f"once spec 'at' is not an ISO 8601 datetime: {at!r}") from None
