"""The stored form of a schedule (an instance record's ``spec``), read back in this one place.

Each schedule's :meth:`~Schedule.to_spec` writes its form; records already in stores hold these, so
the format never changes (keys a kind does not use are ignored):

- ``{"kind": "cron", "expression": "0 9 * * *", "timezone": "Europe/Dublin"}`` (``timezone`` may
  be ``null``: UTC);
- ``{"kind": "interval", "seconds": 60.0}`` (a number; DynamoDB gives back a ``Decimal``);
- ``{"kind": "once", "at": "2030-01-01T09:00:00+00:00"}`` (ISO 8601; a trailing ``Z`` is read too);
- ``{"kind": "celery", "class": "...", ...}``: the stable description of a Celery schedule object
  (:mod:`celery_pyncette.schedules._celery_spec`), compared with the code's, never rebuilt.

Any kind may carry bounds, ``"start_at"`` / ``"end_at"`` (ISO 8601, as ``"at"``; see
:class:`~celery_pyncette.schedules.BoundedSchedule`), and a cron or interval may carry
``"jitter"`` (seconds, as ``"seconds"``; see :class:`~celery_pyncette.schedules.JitteredSchedule`).
They are written only when set, so a spec without them is the one earlier versions wrote.

:func:`schedule_from_spec` rebuilds the schedule, validated: a ``ValueError`` marks a record that
cannot run (the caller quarantines it). :func:`read_spec` reads the fields only, for views of
stored records (``TaskState``), which show what is stored even when it no longer validates (a cron
expression a newer croniter refuses).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from celery_pyncette.schedules._base import Schedule
from celery_pyncette.schedules._cron import CronSchedule
from celery_pyncette.schedules._interval import IntervalSchedule, OnceSchedule
from celery_pyncette.schedules._jitter import JitteredSchedule
from celery_pyncette.schedules._window import BoundedSchedule


@dataclass(frozen=True, slots=True)
class StoredSpec:
    """The fields of a stored spec, decoded but not validated as a schedule; ``None`` where the
    kind has no such field (``kind`` is ``None`` when the spec names none)."""

    kind: str | None
    expression: str | None = None
    timezone: str | None = None
    interval: timedelta | None = None
    execute_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_spec`. Raises ``ValueError`` on a malformed spec.

    Keys a kind does not use are ignored; a ``"celery"`` spec cannot be rebuilt (it holds only a
    description of the object) and raises ``ValueError`` too. A jittered schedule comes back
    unbound: :meth:`Schedule.bound_to` names its instance.
    """
    schedule = _plain_schedule(spec)
    start_at, end_at, jitter = _options(spec)
    if start_at is not None or end_at is not None:
        schedule = BoundedSchedule(schedule, start_at, end_at)
    if jitter is not None:
        schedule = JitteredSchedule(schedule, jitter)
    return schedule


def _plain_schedule(spec: Mapping[str, Any]) -> Schedule:
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
    start_at, end_at, jitter = _options(spec)
    fields = StoredSpec(
        kind if isinstance(kind, str) else None, start_at=start_at, end_at=end_at, jitter=jitter
    )
    if kind == "cron":
        expression, zone = _cron_fields(spec)
        return replace(fields, expression=expression, timezone=zone)
    if kind == "interval":
        return replace(fields, interval=_interval(spec))
    if kind == "once":
        return replace(fields, execute_at=_execute_at(spec))
    return fields


def _options(spec: Mapping[str, Any]) -> tuple[datetime | None, datetime | None, timedelta | None]:
    """The bounds and jitter of a spec (``None`` where absent), decoded but not validated."""
    start_at, end_at, jitter = (spec.get(key) for key in ("start_at", "end_at", "jitter"))
    return (
        None if start_at is None else _instant(start_at, "start_at", spec),
        None if end_at is None else _instant(end_at, "end_at", spec),
        None if jitter is None else _seconds(jitter, "jitter", spec),
    )


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
    return _seconds(spec.get("seconds"), "seconds", spec, what="interval spec")


def _seconds(value: Any, key: str, spec: Mapping[str, Any], what: str = "spec") -> timedelta:
    # Decimal: what DynamoDB returns for a number.
    if not isinstance(value, (int, float, Decimal)) or isinstance(value, bool):
        raise ValueError(f"{what} needs a number of {key!r}, got {spec!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} {key!r} must be finite, got {spec!r}")
    try:
        return timedelta(seconds=float(value))
    except OverflowError:
        raise ValueError(f"{what} {key!r} is out of range: {spec!r}") from None


def _execute_at(spec: Mapping[str, Any]) -> datetime:
    return _instant(spec.get("at"), "at", spec, what="once spec")


def _instant(at: Any, key: str, spec: Mapping[str, Any], what: str = "spec") -> datetime:
    if not isinstance(at, str):
        raise ValueError(f"{what} needs an ISO 8601 {key!r}, got {spec!r}")
    try:
        # Python 3.10's fromisoformat does not read a trailing "Z".
        return datetime.fromisoformat(at[:-1] + "+00:00" if at.endswith("Z") else at)
    except ValueError:
        raise ValueError(f"{what} {key!r} is not an ISO 8601 datetime: {at!r}") from None
