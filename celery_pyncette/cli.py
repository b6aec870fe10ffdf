"""``celery -A proj pyncette ...``: inspect and control schedules from a terminal.

Registered through the ``celery.commands`` entry point, so Celery's own options (``-A``, ``-b``,
``--config``) apply. Every command takes ``--json`` for scripts. Errors are one line on stderr
and a non-zero exit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from celery_pyncette.errors import PyncetteError
from celery_pyncette.extension import Pyncette, extension_for
from celery_pyncette.stores.base import STATIC_INSTANCE

F = TypeVar("F", bound=Callable[..., Any])


def _pyncette(ctx: click.Context) -> Pyncette:
    app = getattr(ctx.obj, "app", None)
    if app is None:
        raise click.UsageError("no Celery app: run as `celery -A proj pyncette ...`")
    return extension_for(app)


def _json_option(function: F) -> F:
    decorated: F = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(
        function
    )
    return decorated


def _emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(list(rows), default=_json_default, indent=2))
        return
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    click.echo(
        "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip()
    )
    for row_cells in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row_cells, widths, strict=False)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _fail(exc: Exception) -> None:
    raise click.ClickException(f"{type(exc).__name__}: {exc}")


@click.group(name="pyncette")
def pyncette() -> None:
    """Inspect and control celery-pyncette schedules."""


@pyncette.command(name="migrate")
@_json_option
@click.pass_context
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Create or upgrade the store's tables and indexes."""
    extension = _pyncette(ctx)
    try:
        extension.store.setup()
    except PyncetteError as exc:
        _fail(exc)
    _emit([{"store": extension.settings.url, "status": "ready"}], ["store", "status"], as_json)


@pyncette.command(name="list")
@_json_option
@click.pass_context
def list_tasks(ctx: click.Context, as_json: bool) -> None:
    """Every task with its kind, schedule, instance count and next run."""
    extension = _pyncette(ctx)
    rows = []
    try:
        for definition in extension.definitions():
            store = extension.store
            count = sum(
                store.count_instances(definition.name, p) for p in range(definition.partition_count)
            )
            next_run = None
            if not definition.dynamic:
                state = extension.get_task_state(definition.name)
                next_run = state.scheduled_at if state else None
            rows.append(
                {
                    "task": definition.name,
                    "kind": "dynamic" if definition.dynamic else "static",
                    "schedule": definition.schedule.description if definition.schedule else "-",
                    "instances": count,
                    "next_run": next_run,
                    "enabled": definition.enabled,
                }
            )
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    _emit(rows, ["task", "kind", "schedule", "instances", "next_run", "enabled"], as_json)


@pyncette.command(name="show")
@click.argument("task")
@click.argument("instance", required=False)
@_json_option
@click.pass_context
def show(ctx: click.Context, task: str, instance: str | None, as_json: bool) -> None:
    """The stored state of a static task, or of one dynamic instance, or list its instances."""
    extension = _pyncette(ctx)
    try:
        definition = extension.definition(task)
        if definition.dynamic and instance is None:
            states = []
            token = None
            while True:
                page = extension.list_task_states(task, 500, token)
                states.extend(page.tasks)
                token = page.continuation_token
                if token is None:
                    break
        else:
            state = extension.get_task_state(task, instance)
            if state is None:
                raise click.ClickException(f"no stored state for {task} {instance or ''}".rstrip())
            states = [state]
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    rows = [
        {
            "task": s.task,
            "instance": s.instance if s.instance != STATIC_INSTANCE else None,
            "scheduled_at": s.scheduled_at,
            "locked_until": s.locked_until,
            "locked_by": s.locked_by,
            "last_run_at": s.last_run_at,
            "last_status": s.last_status,
            "args": json.dumps(dict(s.args)),
        }
        for s in states
    ]
    _emit(
        rows,
        ["task", "instance", "scheduled_at", "locked_until", "last_run_at", "last_status", "args"],
        as_json,
    )
