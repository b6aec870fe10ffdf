"""Shared plumbing of the ``celery pyncette`` commands: the group, output, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import click

from celery_pyncette.errors import PyncetteError
from celery_pyncette.extension import Pyncette, extension_for
from celery_pyncette.state import TaskState
from celery_pyncette.stores.base import Strike
from celery_pyncette.strike_values import type_name

F = TypeVar("F", bound=Callable[..., Any])

#: Keywords of ``schedule_task`` that cannot be task arguments.
RESERVED_ARGS = frozenset({"schedule", "interval", "execute_at", "timezone", "force"})


# --- plumbing ------------------------------------------------------------------------------------


def extension_of(ctx: click.Context) -> Pyncette:
    app = getattr(ctx.find_root().obj, "app", None)
    if app is None:
        raise click.UsageError("no Celery app: run as `celery -A proj pyncette ...`")
    try:
        return extension_for(app)
    except PyncetteError as exc:
        fail(exc)


def json_option(function: F) -> F:
    decorated: F = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(
        function
    )
    return decorated


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, default=_json_default, indent=2))


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        print_json(list(rows))
        return
    table(rows, columns)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for cells in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def fail(exc: Exception) -> NoReturn:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc) is not ValueError:
        message = f"{type(exc).__name__}: {message}"
    raise click.ClickException(message)


def parse_value(text: str) -> Any:
    """JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def state_row(state: TaskState) -> dict[str, Any]:
    return {
        "task": state.task,
        "instance": state.instance,
        "partition": state.partition,
        "schedule": _timing(state),
        "scheduled_at": state.scheduled_at,
        "locked_until": state.locked_until,
        "locked_by": state.locked_by,
        "last_run_at": state.last_run_at,
        "last_status": state.last_status,
        "args": dict(state.args),
    }


def _timing(state: TaskState) -> str | None:
    if state.schedule is not None:
        return f"{state.schedule} ({state.timezone or 'UTC'})"
    if state.interval is not None:
        return f"every {state.interval}"
    if state.execute_at is not None:
        return f"once at {state.execute_at.isoformat(timespec='seconds')}"
    return None


STATE_COLUMNS = (
    "task",
    "instance",
    "schedule",
    "scheduled_at",
    "locked_until",
    "last_run_at",
    "last_status",
    "args",
)


def strike_row(strike: Strike, as_json: bool = True) -> dict[str, Any]:
    """One strike: the value as is for ``--json``, as JSON text for a table; with its type."""
    where = strike.parameter is not None
    return {
        "task": strike.task,
        "parameter": strike.parameter,
        "operator": strike.operator,
        "value": strike.value if as_json or not where else json.dumps(strike.value),
        "type": type_name(strike.value) if where else None,
    }


# --- the group -----------------------------------------------------------------------------------


@click.group(name="pyncette")
def pyncette() -> None:
    """Inspect and control celery-pyncette schedules."""
