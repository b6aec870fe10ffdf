"""Reading requests and showing values on pages: query values, form fields, display text.

Request bodies of the API are read here too; what the API answers is
:mod:`celery_pyncette._read_model`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from celery_pyncette import _bounds as bounds
from celery_pyncette._state import TaskState
from celery_pyncette._strike_values import literal, parse_literal, shown


def same_site_referer(request: Request) -> str:
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.headers.get("host") and referer.path.startswith(root(request)):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return root(request) + "/"


def root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def bounded_int(text: str | None, default: int, most: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= most:
        raise ValueError(f"expected an integer from 1 to {most}, got {value}")
    return value


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ValueError(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"arguments are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError('arguments must be a JSON object, e.g. {"user_id": 42}')
    return value


def timing_from(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``schedule_task`` keywords from ``cron`` / ``interval`` / ``at`` (+ ``timezone``)."""
    cron = str(fields.get("cron") or "").strip() or None
    interval = fields.get("interval")
    interval = None if interval in (None, "") else interval
    at = str(fields.get("at") or "").strip() or None
    zone = str(fields.get("timezone") or "").strip() or None
    if sum(v is not None for v in (cron, interval, at)) != 1:
        raise ValueError("give exactly one of a cron expression, an interval or a time")
    timing: dict[str, Any] = {"timezone": zone}
    if cron is not None:
        timing["schedule"] = cron
    elif interval is not None:
        try:
            seconds = float(interval)
        except (TypeError, ValueError):
            raise ValueError(f"interval must be a number of seconds, got {interval!r}") from None
        timing["interval"] = bounds.seconds(seconds, "interval")
    else:
        assert at is not None
        try:
            when = datetime.fromisoformat(at[:-1] + "+00:00" if at.endswith("Z") else at)
        except ValueError:
            raise ValueError(f"{at!r} is not an ISO 8601 time") from None
        timing["execute_at"] = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return timing


def strike_from_form(form: Mapping[str, str]) -> tuple[str | None, str | None, str | None, Any]:
    task = form.get("task") or None
    parameter = form.get("parameter", "").strip() or None
    if parameter is None:
        return task, None, None, None
    return task, parameter, form.get("operator") or None, parse_literal(form.get("value", ""))


def reason_from_form(form: Mapping[str, str]) -> str | None:
    """The strike form's reason; a field left blank is no reason."""
    return form.get("reason", "").strip() or None


def timing(state: TaskState) -> str:
    if state.schedule is not None:
        return f"cron {state.schedule} ({state.timezone or 'UTC'})"
    if state.interval is not None:
        return f"every {duration(state.interval)}"
    if state.execute_at is not None:
        return f"once at {state.execute_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    return "-"


def duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def relative(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    seconds = int((value - now).total_seconds())
    span = abs(seconds)
    if span < 1:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if span >= size:
            text = f"{span // size}{unit}"
            break
    return f"in {text}" if seconds > 0 else f"{text} ago"


def ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


#: Functions the templates call: timing and ranges of tasks, strike values typed and as text.
TEMPLATE_HELPERS: dict[str, Callable[..., str]] = {
    "timing": timing,
    "ranges": ranges,
    "literal": literal,
    "typed": shown,
}
