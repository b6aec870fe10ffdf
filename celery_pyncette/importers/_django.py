"""Reading django-celery-beat's periodic tasks from its database, with SQLAlchemy.

The ``periodictask`` table and the ``crontabschedule``, ``intervalschedule``, ``solarschedule`` and
``clockedschedule`` tables it points to (columns a version lacks are treated as empty). Clocked
tasks have no ``beat_schedule`` equivalent and are skipped with the reason; a crontab whose own time
zone differs from the app's keeps it (:func:`celery_pyncette.schedules.zoned`). ``start_time`` and
``expires`` become the entry's bounds (:func:`celery_pyncette.schedules.bounded`; a naive time is
UTC), and a ``one_off`` task is bounded to its next occurrence, so it runs once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from celery_pyncette.importers._entries import ImportedEntry, ImportResult, Skipped, make_entry
from celery_pyncette.importers._specs import (
    CRON_FIELDS,
    ConversionError,
    CronSpec,
    IntervalSpec,
    ScheduleSpec,
    SolarSpec,
)
from celery_pyncette.schedules import parse_timezone

#: The Django model name -> the unit of an interval's ``period`` column.
_PERIODS = ("days", "hours", "minutes", "seconds", "microseconds")


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
    if row.get("crontab_id") is not None:
        cron = _referenced(schedules["crontabschedule"], row["crontab_id"], "crontab")
        zone = cron.get("timezone")
        spec = CronSpec(
            tuple(str(cron.get(f) or "*").replace(" ", "") for f in CRON_FIELDS),
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
    return make_entry(
        app,
        row.get("name"),
        row.get("task"),
        spec,
        args=args,
        kwargs=kwargs,
        options=options,
        enabled=bool(row.get("enabled", True)),
        notes=notes,
        start_at=_instant(row.get("start_time"), "start_time"),
        end_at=_instant(row.get("expires"), "expires"),
        one_off=bool(row.get("one_off")),
    )


def _instant(value: Any, column: str) -> datetime | None:
    """A datetime column as an aware datetime: a naive one is UTC (what Django stores with
    ``USE_TZ = True``, its default)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConversionError(f"{column} {value!r} is not a datetime") from None
    if not isinstance(value, datetime):
        raise ConversionError(f"{column} {value!r} is not a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


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
