"""Next-run arithmetic: cron (with seconds), fixed intervals, once-off runs, Celery schedules.

Every datetime passed in must be aware (a naive one raises ``ValueError``); every datetime returned
is aware UTC. A :class:`Schedule` answers three questions:

- :meth:`Schedule.first_run`: when does a new instance created at ``now`` first run?
- :meth:`Schedule.next_after`: which occurrence comes strictly after a given instant?
- :meth:`Schedule.due_occurrence`: which occurrence runs now for an overdue instance (the missed-run
  policy: coalesce, or catch up one at a time)?

Schedules are values: equal when their specs are equal, and :func:`schedule_from_spec` rebuilds one
from :meth:`Schedule.to_spec`, the JSON form the stores keep (:func:`read_spec` reads its fields).

Cron expressions have 5 fields, or 6 with **seconds** last (croniter's convention), and are
evaluated in their time zone's wall-clock time: a slot in a spring-forward gap runs once at the
gap's end, a repeated wall time runs once (both passes when the hour field is ``*``); the rules
are stated in full in ``_cron``. Time zones are IANA names (:mod:`zoneinfo`), or other names that
:func:`dateutil.tz.gettz` understands, such as ``"UTC+12"`` (see :func:`parse_timezone`).

Layout (private modules, this package is the public face): ``_base`` the contract and missed-run
policy, ``_zones`` time zone names, ``_cron`` cron and DST, ``_interval`` intervals and once-offs,
``_celery`` and ``_celery_spec`` Celery schedule objects and their stable description,
``_from_celery`` ``beat_schedule`` conversion and :func:`zoned`, ``_window`` bounds (``start_at``,
``end_at``), ``_jitter`` jittered send times, ``_spec`` the stored-form codec.
"""

from __future__ import annotations

from celery_pyncette.schedules._base import Schedule
from celery_pyncette.schedules._celery import CelerySchedule
from celery_pyncette.schedules._cron import CronSchedule
from celery_pyncette.schedules._from_celery import bounded, from_celery, zoned
from celery_pyncette.schedules._interval import IntervalSchedule, OnceSchedule
from celery_pyncette.schedules._jitter import JitteredSchedule
from celery_pyncette.schedules._spec import StoredSpec, read_spec, schedule_from_spec
from celery_pyncette.schedules._window import BoundedSchedule
from celery_pyncette.schedules._zones import parse_timezone

__all__ = [
    "BoundedSchedule",
    "CelerySchedule",
    "CronSchedule",
    "IntervalSchedule",
    "JitteredSchedule",
    "OnceSchedule",
    "Schedule",
    "StoredSpec",
    "bounded",
    "from_celery",
    "parse_timezone",
    "read_spec",
    "schedule_from_spec",
    "zoned",
]
