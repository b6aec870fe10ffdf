"""Reading RedBeat's entries from Redis.

One hash per entry, ``<prefix><name>``, whose ``definition`` field is RedBeat's JSON: ``name``,
``task``, ``schedule`` (``{"__type__": "crontab", "minute": ..., "hour": ..., "day_of_week": ...,
"day_of_month": ..., "month_of_year": ...}`` or ``{"__type__": "interval", "every": seconds,
"relative": bool}``), ``args``, ``kwargs``, ``options``, ``enabled``. Hashes under the prefix
without a ``definition`` are not entries and are passed over.
"""

from __future__ import annotations

import json
import math
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
)


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
        spec = CronSpec(tuple(schedule.get(f, "*") for f in CRON_FIELDS))
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
    return make_entry(
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
