"""Shared plumbing of the ``celery pyncette`` commands: the group, the app's extension, output,
errors.

Commands print rows of :mod:`celery_pyncette._read_model` (the dashboard's API answers the same):
``--json`` through its ``to_json``; a table shows them for people, times to the second, durations
short, lists and objects as JSON, ``None`` as ``-``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

import click

from celery_pyncette._extension import Pyncette, extension_for
from celery_pyncette._read_model import to_json
from celery_pyncette.errors import PyncetteError

F = TypeVar("F", bound=Callable[..., Any])

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
    """``value`` as indented JSON, through the read model's :func:`to_json`."""
    click.echo(json.dumps(to_json(value), default=str, indent=2))


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


def fail(exc: Exception) -> NoReturn:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc) is not ValueError:
        message = f"{type(exc).__name__}: {message}"
    raise click.ClickException(message)


# --- the group -----------------------------------------------------------------------------------


@click.group(name="pyncette")
def pyncette() -> None:
    """Inspect and control celery-pyncette schedules."""


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time with a UTC offset (``Z`` too), as aware UTC; ``ValueError`` naming
    ``option`` otherwise."""
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{option} {text!r} has no UTC offset; add one, e.g. {text}+00:00")
    return value.astimezone(timezone.utc)
