"""One imported entry, validated the way beat will run it, and the result of reading one source.

:func:`make_entry` is what every reader calls: it checks the name, task and arguments, converts the
schedule with :func:`celery_pyncette.schedules.from_celery` and refuses one that never fires,
raising :class:`ConversionError` with the reason (the reader then records a :class:`Skipped`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery

from celery_pyncette import _clock as clock
from celery_pyncette.importers._specs import ConversionError, ScheduleSpec
from celery_pyncette.schedules import BoundedSchedule, Schedule, from_celery


@dataclass(frozen=True, slots=True)
class ImportedEntry:
    """One entry, converted and validated: ``pyncette_schedule`` is how beat will run it."""

    name: str
    task: str
    spec: ScheduleSpec
    pyncette_schedule: Schedule
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    notes: list[str] = field(default_factory=list)
    #: Bounds carried over from the source (django-celery-beat's ``start_time``, ``expires``).
    start_at: datetime | None = None
    end_at: datetime | None = None

    def schedule_code(self) -> str:
        """The Python expression of the entry's ``schedule`` in the generated module."""
        code = self.spec.code()
        if self.start_at is None and self.end_at is None:
            return code
        given = [
            f"{name}=datetime.fromisoformat({value.isoformat()!r})"
            for name, value in (("start_at", self.start_at), ("end_at", self.end_at))
            if value is not None
        ]
        return f"bounded({code}, {', '.join(given)})"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "schedule": self.spec.as_json(),
            "pyncette_schedule": self.pyncette_schedule.description,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "enabled": self.enabled,
            "notes": self.notes,
            "start_at": None if self.start_at is None else self.start_at.isoformat(),
            "end_at": None if self.end_at is None else self.end_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry that could not be converted."""

    name: str
    reason: str


@dataclass
class ImportResult:
    """Everything one source held."""

    source: str
    entries: list[ImportedEntry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "entries": [e.as_json() for e in self.entries],
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
        }


def _json_value(value: Any, what: str) -> Any:
    """Check that ``value`` is plain JSON (no NaN), so ``repr`` gives a valid Python literal."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"{what} are not plain JSON: {exc}") from None


def make_entry(
    app: Celery,
    name: Any,
    task: Any,
    spec: ScheduleSpec,
    *,
    args: Any,
    kwargs: Any,
    options: Mapping[str, Any],
    enabled: bool,
    notes: list[str],
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    one_off: bool = False,
) -> ImportedEntry:
    """One validated entry; with ``start_at`` / ``end_at`` its schedule is bounded (and one
    whose window holds no future occurrence is refused, like one that never fires). A
    ``one_off`` entry ends at its next occurrence (from now, or from ``start_at``): it runs
    once."""
    if not isinstance(name, str) or not name:
        raise ConversionError(f"entry name must be a non-empty string, got {name!r}")
    if not isinstance(task, str) or not task:
        raise ConversionError(f"task must be a non-empty string, got {task!r}")
    args = [] if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, (list, tuple)):
        raise ConversionError(f"args must be a list, got {type(args).__name__}")
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ConversionError(f"kwargs must be an object, got {type(kwargs).__name__}")
    try:
        plain = from_celery(spec.celery(app), app)
        converted = plain
        if start_at is not None or end_at is not None:
            converted = BoundedSchedule(plain, start_at, end_at)
        first = converted.first_run(clock.utcnow())
        if first is None:
            raise ConversionError(f"{converted.description} never fires")
        if one_off:
            # A beat_schedule entry has no max_runs: ending the schedule at its next occurrence
            # says "once" in a form stock Celery beat also reads.
            start_at = None if start_at == first else start_at
            end_at = first
            converted = BoundedSchedule(plain, start_at, end_at)
            notes.append(f"one_off: runs once, at its next occurrence {first.isoformat()}")
    except ConversionError:
        raise
    except ValueError as exc:
        raise ConversionError(str(exc)) from None
    return ImportedEntry(
        name=name,
        task=task,
        spec=spec,
        pyncette_schedule=converted,
        args=list(_json_value(list(args), "args")),
        kwargs=dict(_json_value(dict(kwargs), "kwargs")),
        options=dict(_json_value(dict(options), "options")),
        enabled=enabled,
        notes=notes,
        start_at=start_at,
        end_at=end_at,
    )
