"""The schedule of an imported entry as its source stored it, one class per Celery schedule type.

Each form builds the Celery object beat will run (:meth:`celery`, ``ConversionError`` when the
source's values are invalid), writes the Python expression the generated module holds
(:meth:`code`, using only ``datetime.timedelta``, ``celery.schedules`` and
:func:`celery_pyncette.schedules.zoned`), and describes itself for ``--json`` (:meth:`as_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab, solar

from celery_pyncette.schedules import zoned

CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


class ConversionError(ValueError):
    """An entry that cannot become a beat_schedule entry (the message says why)."""


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A crontab's five fields as the source stored them, and its own zone (None: the app's)."""

    fields: tuple[Any, ...]
    timezone: str | None = None

    def celery(self, app: Celery) -> crontab:
        kwargs = dict(zip(CRON_FIELDS, self.fields, strict=True))
        try:
            built = crontab(app=app, **kwargs)
        except (ValueError, TypeError, IndexError) as exc:
            raise ConversionError(f"invalid crontab {self.text()}: {exc}") from None
        return zoned(built, self.timezone) if self.timezone else built

    def code(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(CRON_FIELDS, self.fields, strict=True))
        call = f"crontab({fields})"
        return f"zoned({call}, {self.timezone!r})" if self.timezone else call

    def text(self) -> str:
        return " ".join(str(v) for v in self.fields)

    def as_json(self) -> dict[str, Any]:
        fields = dict(zip(CRON_FIELDS, self.fields, strict=True))
        return {"type": "crontab", **fields, "timezone": self.timezone}


@dataclass(frozen=True, slots=True)
class IntervalSpec:
    """Every ``amount`` ``unit`` (a ``timedelta`` keyword)."""

    amount: float
    unit: str = "seconds"

    def delta(self) -> timedelta:
        try:
            delta = timedelta(**{self.unit: self.amount})
        except (OverflowError, TypeError) as exc:
            raise ConversionError(f"invalid interval {self.amount} {self.unit}: {exc}") from None
        if delta <= timedelta(0):
            raise ConversionError(f"interval must be positive, got {self.amount} {self.unit}")
        return delta

    def celery(self, app: Celery) -> timedelta:
        return self.delta()

    def code(self) -> str:
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        return f"timedelta({self.unit}={amount!r})"

    def as_json(self) -> dict[str, Any]:
        return {"type": "interval", "seconds": self.delta().total_seconds()}


@dataclass(frozen=True, slots=True)
class SolarSpec:
    """A Celery ``solar`` event at a place."""

    event: str
    latitude: float
    longitude: float

    def celery(self, app: Celery) -> solar:
        try:
            return solar(self.event, self.latitude, self.longitude, app=app)
        except (ValueError, TypeError, ImportError) as exc:
            raise ConversionError(f"invalid solar schedule: {exc}") from None

    def code(self) -> str:
        return f"solar({self.event!r}, {self.latitude!r}, {self.longitude!r})"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "solar",
            "event": self.event,
            "latitude": self.latitude,
            "longitude": self.longitude,
        }


ScheduleSpec = CronSpec | IntervalSpec | SolarSpec
