"""Read an existing schedule from RedBeat or django-celery-beat, for ``celery pyncette import``.

Those schedulers keep *Celery tasks by name* with positional and keyword arguments; in
celery-pyncette such schedules live in code, as ``beat_schedule`` entries, which beat with
``-S pyncette`` turns into persistent, leased records in the store. So an import reads every entry,
validates it (cron fields, time zone, interval, JSON arguments) by converting it the way beat will,
and writes a Python module holding a ``BEAT_SCHEDULE`` dict to add to the Celery configuration.
Entries that cannot be converted are reported with the reason; disabled ones go to a separate
``DISABLED_BEAT_SCHEDULE`` dict, for reference.

* RedBeat: one hash per entry, ``<prefix><name>``, whose ``definition`` field is RedBeat's JSON:
  ``name``, ``task``, ``schedule`` (``{"__type__": "crontab", "minute": ..., "hour": ...,
  "day_of_week": ..., "day_of_month": ..., "month_of_year": ...}`` or ``{"__type__": "interval",
  "every": seconds, "relative": bool}``), ``args``, ``kwargs``, ``options``, ``enabled``.
* django-celery-beat: the ``periodictask`` table and the ``crontabschedule``,
  ``intervalschedule``, ``solarschedule`` and ``clockedschedule`` tables it points to, read with
  SQLAlchemy (columns a version lacks are treated as empty).
"""

from __future__ import annotations

import json
import math
import pprint
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab, solar
from kombu.utils.url import maybe_sanitize_url

from celery_pyncette import clock
from celery_pyncette.schedules import Schedule, from_celery, parse_timezone

__all__ = [
    "ImportResult",
    "ImportedEntry",
    "Skipped",
    "from_django_celery_beat",
    "from_redbeat",
    "render_module",
    "zoned",
]

#: The Django model name -> the unit of an interval's ``period`` column.
_PERIODS = ("days", "hours", "minutes", "seconds", "microseconds")
_CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def zoned(schedule: crontab, zone: str) -> crontab:
    """Evaluate a Celery ``crontab`` in ``zone`` instead of the app's time zone.

    Used by imported modules for a django-celery-beat crontab whose own time zone differs from the
    app's; both Celery and celery-pyncette honour the crontab's ``tz`` attribute.
    """
    schedule.tz = parse_timezone(zone)
    return schedule


class ConversionError(ValueError):
    """An entry that cannot become a beat_schedule entry (the message says why)."""


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A crontab's five fields as the source stored them, and its own zone (None: the app's)."""

    fields: tuple[Any, ...]
    timezone: str | None = None

    def celery(self, app: Celery) -> crontab:
        kwargs = dict(zip(_CRON_FIELDS, self.fields, strict=True))
        try:
            built = crontab(app=app, **kwargs)
        except (ValueError, TypeError, IndexError) as exc:
            raise ConversionError(f"invalid crontab {self.text()}: {exc}") from None
        return zoned(built, self.timezone) if self.timezone else built

    def code(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(_CRON_FIELDS, self.fields, strict=True))
        call = f"crontab({fields})"
        return f"zoned({call}, {self.timezone!r})" if self.timezone else call

    def text(self) -> str:
        return " ".join(str(v) for v in self.fields)

    def as_json(self) -> dict[str, Any]:
        fields = dict(zip(_CRON_FIELDS, self.fields, strict=True))
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


def _entry(
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
) -> ImportedEntry:
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
        converted = from_celery(spec.celery(app), app)
        if converted.first_run(clock.utcnow()) is None:
            raise ConversionError(f"{converted.description} never fires")
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
    )


# --- RedBeat ------------------------------------------------------------------------------------


def from_redbeat(
    app: Celery, url: str, *, prefix: str = "redbeat:", client: Any = None
) -> ImportResult:
    """Read every RedBeat entry under ``prefix`` from the Redis at ``url``.

    ``client`` (a ``redis.Redis``) is used instead of connecting to ``url`` when given.
    """
    result = ImportResult(f"RedBeat at {maybe_sanitize_url(url)} (prefix {prefix!r})")
    own = client is None
    if client is None:
        try:
            import redis
        except ImportError:
            raise ConversionError(
                "reading RedBeat needs the redis package: pip install 'celery-pyncette[redis]'"
            ) from None
        client = redis.Redis.from_url(url)
    try:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        keys = sorted(
            k.decode() if isinstance(k, bytes) else str(k)
            for k in client.scan_iter(match=pattern, count=500, _type="hash")
        )
        for key in keys:
            raw = client.hget(key, "definition")
            if raw is None:
                continue  # a hash under the prefix that is not an entry
            name = key[len(prefix) :]
            try:
                result.entries.append(_redbeat_entry(app, name, raw))
            except ConversionError as exc:
                result.skipped.append(Skipped(name, str(exc)))
    finally:
        if own:
            client.close()
    return result


def _redbeat_entry(app: Celery, key_name: str, raw: bytes | str) -> ImportedEntry:
    try:
        definition = json.loads(raw)
    except ValueError as exc:
        raise ConversionError(f"definition is not JSON: {exc}") from None
    if not isinstance(definition, dict):
        raise ConversionError("definition is not a JSON object")
    schedule = definition.get("schedule")
    if not isinstance(schedule, dict):
        raise ConversionError(f"schedule is not an object: {schedule!r}")
    kind = schedule.get("__type__")
    spec: ScheduleSpec
    notes: list[str] = []
    if kind == "crontab":
        spec = CronSpec(tuple(schedule.get(f, "*") for f in _CRON_FIELDS))
    elif kind == "interval":
        every = schedule.get("every")
        if not isinstance(every, (int, float)) or isinstance(every, bool):
            raise ConversionError(f"interval 'every' is not a number: {every!r}")
        if not math.isfinite(every):
            raise ConversionError(f"interval 'every' is not finite: {every!r}")
        spec = IntervalSpec(every)
        if schedule.get("relative"):
            notes.append("relative=True is not kept: intervals run from the previous run")
    elif kind == "rrule":
        raise ConversionError(
            "rrule schedules have no beat_schedule equivalent; rewrite it as a crontab or interval"
        )
    else:
        raise ConversionError(f"unknown schedule type {kind!r}")
    options = definition.get("options") or {}
    if not isinstance(options, dict):
        raise ConversionError(f"options is not an object: {options!r}")
    return _entry(
        app,
        definition.get("name") or key_name,
        definition.get("task"),
        spec,
        args=definition.get("args"),
        kwargs=definition.get("kwargs"),
        options=options,
        enabled=definition.get("enabled", True) is not False,
        notes=notes,
    )


# --- django-celery-beat -------------------------------------------------------------------------


def from_django_celery_beat(
    app: Celery, url: str, *, table_prefix: str = "django_celery_beat_"
) -> ImportResult:
    """Read every periodic task from django-celery-beat's tables in the database at ``url``.

    ``url`` is an SQLAlchemy URL (``sqlite:///db.sqlite3``, ``postgresql+psycopg://...``,
    ``mysql+pymysql://...``); the driver comes from the matching celery-pyncette extra.
    """
    import sqlalchemy as sa

    result = ImportResult(f"django-celery-beat at {maybe_sanitize_url(url)}")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConversionError(f"cannot open {maybe_sanitize_url(url)}: {exc}") from None
    try:
        with engine.connect() as conn:
            tables = _reflect(conn, table_prefix)
            schedules = {
                kind: _rows_by_id(conn, tables.get(kind))
                for kind in ("crontabschedule", "intervalschedule", "solarschedule")
            }
            has_clocked = "clockedschedule" in tables
            task_table = tables["periodictask"]
            rows = conn.execute(sa.select(task_table).order_by(task_table.c.name)).mappings()
            for row in rows:
                name = str(row["name"])
                try:
                    result.entries.append(_django_entry(app, row, schedules, has_clocked))
                except ConversionError as exc:
                    result.skipped.append(Skipped(name, str(exc)))
    except sa.exc.SQLAlchemyError as exc:
        message = str(exc).splitlines()[0]
        raise ConversionError(f"reading django-celery-beat tables failed: {message}") from None
    finally:
        engine.dispose()
    return result


def _reflect(conn: Any, prefix: str) -> dict[str, Any]:
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    if f"{prefix}periodictask" not in names:
        raise ConversionError(
            f"no table {prefix}periodictask: is this django-celery-beat's database "
            "(and --table-prefix right)?"
        )
    metadata = sa.MetaData()
    return {
        kind: sa.Table(f"{prefix}{kind}", metadata, autoload_with=conn)
        for kind in (
            "periodictask",
            "crontabschedule",
            "intervalschedule",
            "solarschedule",
            "clockedschedule",
        )
        if f"{prefix}{kind}" in names
    }


def _rows_by_id(conn: Any, table: Any) -> dict[Any, Mapping[str, Any]]:
    import sqlalchemy as sa

    if table is None:
        return {}
    return {row["id"]: row for row in conn.execute(sa.select(table)).mappings()}


def _django_entry(
    app: Celery,
    row: Mapping[Any, Any],
    schedules: Mapping[str, Mapping[Any, Mapping[str, Any]]],
    has_clocked: bool,
) -> ImportedEntry:
    notes: list[str] = []
    spec: ScheduleSpec
    if row.get("clocked_id") is not None and has_clocked:
        raise ConversionError(
            "a clocked (one-off) task has no beat_schedule equivalent; schedule it from code with "
            "pyncette.schedule_task(..., execute_at=...)"
        )
    if row.get("one_off"):
        raise ConversionError(
            "a one-off task has no beat_schedule equivalent; schedule it from code with "
            "pyncette.schedule_task(..., execute_at=...)"
        )
    if row.get("crontab_id") is not None:
        cron = _referenced(schedules["crontabschedule"], row["crontab_id"], "crontab")
        zone = cron.get("timezone")
        spec = CronSpec(
            tuple(str(cron.get(f) or "*").replace(" ", "") for f in _CRON_FIELDS),
            _foreign_zone(app, str(zone)) if zone else None,
        )
    elif row.get("interval_id") is not None:
        interval = _referenced(schedules["intervalschedule"], row["interval_id"], "interval")
        period = interval.get("period")
        if period not in _PERIODS:
            raise ConversionError(f"unknown interval period {period!r}")
        every = interval.get("every")
        if not isinstance(every, int) or isinstance(every, bool):
            raise ConversionError(f"interval 'every' is not an integer: {every!r}")
        spec = IntervalSpec(every, period)
    elif row.get("solar_id") is not None:
        sun = _referenced(schedules["solarschedule"], row["solar_id"], "solar")
        spec = SolarSpec(str(sun["event"]), float(sun["latitude"]), float(sun["longitude"]))
    else:
        raise ConversionError("no schedule (interval, crontab, solar or clocked) is set")
    args = _json_column(row.get("args"), "args", [])
    kwargs = _json_column(row.get("kwargs"), "kwargs", {})
    options: dict[str, Any] = {}
    for key in ("queue", "exchange", "routing_key", "priority"):
        if row.get(key) not in (None, ""):
            options[key] = row[key]
    headers = _json_column(row.get("headers"), "headers", {})
    if headers:
        options["headers"] = headers
    if row.get("expire_seconds") is not None:
        options["expires"] = int(row["expire_seconds"])
    if row.get("expires") is not None:
        notes.append(f"expires={row['expires']} (an absolute end) is not kept")
    if row.get("start_time") is not None:
        notes.append(f"start_time={row['start_time']} is not kept: it runs from the next slot")
    return _entry(
        app,
        row.get("name"),
        row.get("task"),
        spec,
        args=args,
        kwargs=kwargs,
        options=options,
        enabled=bool(row.get("enabled", True)),
        notes=notes,
    )


def _referenced(rows: Mapping[Any, Mapping[str, Any]], ident: Any, kind: str) -> Mapping[str, Any]:
    found = rows.get(ident)
    if found is None:
        raise ConversionError(f"its {kind} schedule (id {ident}) does not exist")
    return found


def _json_column(value: Any, what: str, empty: Any) -> Any:
    if value in (None, ""):
        return empty
    if not isinstance(value, str):
        return value  # a JSON column the driver already decoded
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ConversionError(f"{what} is not JSON: {exc}") from None


def _foreign_zone(app: Celery, zone: str) -> str | None:
    """``zone`` when it differs from the app's own time zone, else None (the plain crontab)."""
    try:
        parse_timezone(zone)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None
    configured = app.conf.timezone or ("UTC" if app.conf.enable_utc else None)
    return None if configured is not None and str(configured) == zone else zone


# --- the generated module -----------------------------------------------------------------------


def render_module(result: ImportResult, generated_at: datetime) -> str:
    """A Python module defining ``BEAT_SCHEDULE`` (and ``DISABLED_BEAT_SCHEDULE``)."""
    enabled = [e for e in result.entries if e.enabled]
    disabled = [e for e in result.entries if not e.enabled]
    specs = [e.spec for e in result.entries]
    imports = (
        ["from datetime import timedelta"]
        if any(isinstance(s, IntervalSpec) for s in specs)
        else []
    )
    celery_names = [
        n
        for n, kind in (("crontab", CronSpec), ("solar", SolarSpec))
        if any(isinstance(s, kind) for s in specs)
    ]
    if celery_names:
        imports.append(f"from celery.schedules import {', '.join(celery_names)}")
    if any(isinstance(s, CronSpec) and s.timezone for s in specs):
        imports.append("from celery_pyncette.importers import zoned")
    lines = [
        f'"""Celery beat_schedule imported from {result.source}.',
        "",
        f"Generated by `celery pyncette import` at {generated_at.isoformat(timespec='seconds')}.",
        "Add it to the Celery configuration, e.g.",
        "``app.conf.beat_schedule = {**app.conf.beat_schedule, **BEAT_SCHEDULE}``, and run beat",
        "with ``-S pyncette``: every entry becomes a persistent, leased schedule.",
        '"""',
        "",
        *imports,
        "",
        *_render_dict("BEAT_SCHEDULE", enabled),
    ]
    if disabled:
        lines += ["", "# Disabled in the source: not scheduled, kept for reference."]
        lines += _render_dict("DISABLED_BEAT_SCHEDULE", disabled)
    if result.skipped:
        lines += ["", "# Not imported:"]
        lines += [f"# - {s.name}: {s.reason}" for s in result.skipped]
    return "\n".join(lines) + "\n"


def _render_dict(variable: str, entries: Iterable[ImportedEntry]) -> list[str]:
    lines = [f"{variable} = {{"]
    for entry in entries:
        for note in entry.notes:
            lines.append(f"    # {entry.name}: {note}")
        lines.append(f"    {entry.name!r}: {{")
        lines.append(f"        'task': {entry.task!r},")
        lines.append(f"        'schedule': {entry.spec.code()},")
        for key, value in (("args", entry.args), ("kwargs", entry.kwargs)):
            if value:
                lines.append(f"        {key!r}: {_literal(value, 8)},")
        if entry.options:
            lines.append(f"        'options': {_literal(entry.options, 8)},")
        lines.append("    },")
    lines.append("}")
    return lines


def _literal(value: Any, indent: int) -> str:
    text = pprint.pformat(value, width=96 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)
