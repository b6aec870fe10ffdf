"""The task API's ``start_at``, ``end_at`` and ``jitter`` options: read, checked, applied.

They are taken by ``task``, ``dynamic_task``, ``partitioned_task``, ``schedule_task`` and
``schedule_tasks``. On a static task they become part of its schedule at once; on a dynamic
template they are defaults that an instance call's own values replace, one by one. The schedule
(:class:`~celery_pyncette.schedules.BoundedSchedule`,
:class:`~celery_pyncette.schedules.JitteredSchedule`) does the work, and its stored spec keeps
them, so beat, the worker and ``TaskState`` all read them from the record.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette import _bounds as bounds
from celery_pyncette.schedules import (
    BoundedSchedule,
    JitteredSchedule,
    OnceSchedule,
    Schedule,
    read_spec,
)
from celery_pyncette.schedules._base import aware_utc

#: The option names, as :mod:`celery_pyncette._options` lists them.
WINDOW_OPTIONS = frozenset({"start_at", "end_at", "jitter"})


@dataclass(frozen=True, slots=True)
class Window:
    """Bounds and jitter of a schedule (each ``None`` when not given)."""

    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None

    @classmethod
    def pop_from(cls, options: MutableMapping[str, Any]) -> Window:
        """Take and check the three options out of a call's keywords.

        ``ValueError`` naming the option for a bound that is not an aware datetime, ``end_at``
        not after ``start_at``, or a jitter that is not a positive ``timedelta``."""
        return cls.of(options.pop("start_at", None), options.pop("end_at", None),
                      options.pop("jitter", None))  # fmt: skip

    @classmethod
    def of(cls, start_at: Any = None, end_at: Any = None, jitter: Any = None) -> Window:
        """A checked window (see :meth:`pop_from`)."""
        start = None if start_at is None else aware_utc(start_at, "start_at")
        end = None if end_at is None else aware_utc(end_at, "end_at")
        if start is not None and end is not None and end <= start:
            raise ValueError(
                f"end_at ({end.isoformat()}) must be after start_at ({start.isoformat()})"
            )
        if jitter is not None:
            if not isinstance(jitter, timedelta):
                raise ValueError(f"jitter must be a positive timedelta, got {jitter!r}")
            bounds.check_duration(jitter, "jitter")
        return cls(start, end, jitter)

    @classmethod
    def of_spec(cls, spec: Any) -> Window:
        """The window a stored spec carries (empty when it does not decode)."""
        try:
            stored = read_spec(spec)
        except ValueError:
            return cls()
        return cls(stored.start_at, stored.end_at, stored.jitter)

    def over(self, default: Window, *, recurring: bool = True) -> Window:
        """This window's values, and ``default``'s where this one has none (checked again: a
        call's ``end_at`` may fall before a template's ``start_at``). A schedule that is not
        ``recurring`` (a once-off) does not take the default's jitter; one given for it is kept,
        and refused by :meth:`apply`."""
        inherited = default.jitter if recurring else None
        return Window.of(
            default.start_at if self.start_at is None else self.start_at,
            default.end_at if self.end_at is None else self.end_at,
            inherited if self.jitter is None else self.jitter,
        )

    def applied_over(self, default: Window, schedule: Schedule) -> Schedule:
        """``schedule`` under this window over ``default`` (see :meth:`over`)."""
        once = isinstance(schedule, OnceSchedule)
        return self.over(default, recurring=not once).apply(schedule)

    def apply(self, schedule: Schedule) -> Schedule:
        """``schedule`` bounded and jittered as this window says (itself when it is empty).
        ``ValueError`` for jitter on a schedule that is not recurring (``execute_at``)."""
        if self.start_at is not None or self.end_at is not None:
            schedule = BoundedSchedule(schedule, self.start_at, self.end_at)
        if self.jitter is not None:
            schedule = JitteredSchedule(schedule, self.jitter)
        return schedule
