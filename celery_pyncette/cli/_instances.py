"""Commands over tasks and instances: list, show, schedule, unschedule."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from celery_pyncette import _bounds as bounds
from celery_pyncette import _overview
from celery_pyncette._read_model import state_row, task_row
from celery_pyncette._state import TaskState
from celery_pyncette.cli._common import (
    emit,
    extension_of,
    fail,
    json_option,
    parse_time,
    print_json,
    pyncette,
    table,
)
from celery_pyncette.errors import PyncetteError


def _parse_value(text: str) -> Any:
    """JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _emit_states(states: Sequence[TaskState], as_json: bool) -> None:
    """Task states as the read model shows them, or a table with the timing as one text."""
    if as_json:
        print_json([state_row(s) for s in states])
        return
    table([{**state_row(s), "schedule": _timing(s)} for s in states], STATE_COLUMNS)


def _base_timing(state: TaskState) -> str | None:
    if state.schedule is not None:
        return f"{state.schedule} ({state.timezone or 'UTC'})"
    if state.interval is not None:
        return f"every {state.interval}"
    if state.execute_at is not None:
        return f"once at {state.execute_at.isoformat(timespec='seconds')}"
    return None


def _timing(state: TaskState) -> str | None:
    """The timing as one text, with its bounds and jitter."""
    text = _base_timing(state)
    if text is None:
        return None
    if state.start_at is not None:
        text += f" from {state.start_at.isoformat(timespec='seconds')}"
    if state.end_at is not None:
        text += f" until {state.end_at.isoformat(timespec='seconds')}"
    if state.jitter is not None:
        text += f" jitter {state.jitter}"
    return text


STATE_COLUMNS = (
    "task",
    "instance",
    "schedule",
    "scheduled_at",
    "locked_until",
    "last_run_at",
    "last_status",
    "runs_left",
    "args",
)


@pyncette.command(name="list")
@json_option
@click.pass_context
def list_tasks(ctx: click.Context, as_json: bool) -> None:
    """Every task with its kind, schedule, instance count and (static tasks) next run."""
    extension = extension_of(ctx)
    try:
        summaries = _overview.summarize(extension)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    rows = [task_row(s) for s in summaries]
    emit(rows, ["task", "kind", "schedule", "instances", "next_run", "enabled"], as_json)


@pyncette.command(name="show")
@click.argument("task")
@click.argument("instance", required=False)
@click.option("--prefix", help="Only instances whose name starts with this.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Most instances to list.",
)
@json_option
@click.pass_context
def show(
    ctx: click.Context,
    task: str,
    instance: str | None,
    prefix: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The state of a static task or of one dynamic instance; or list a dynamic task's instances."""
    extension = extension_of(ctx)
    more = False
    try:
        definition = extension.definition(task)
        if definition.dynamic and instance is None:
            page = _overview.find_instances(extension, task, limit=limit, prefix=prefix)
            states, more = page.tasks, page.continuation_token is not None
        else:
            state = extension.get_task_state(task, instance)
            if state is None:
                what = f"instance {instance!r} of task {task!r}" if instance else f"task {task!r}"
                raise click.ClickException(f"no stored state for {what}")
            states = [state]
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    _emit_states(states, as_json)
    if more:
        click.echo(f"(first {limit} instances; use --limit or --prefix for others)", err=True)


@pyncette.command(name="schedule")
@click.argument("task")
@click.argument("instance")
@click.option("--cron", metavar="EXPR", help="Cron expression (5 fields, or 6 with seconds last).")
@click.option("--interval", metavar="SECONDS", type=float, help="Run every SECONDS.")
@click.option("--at", "at", metavar="ISO", help="Run once at this ISO 8601 time (with offset).")
@click.option("--timezone", "zone", metavar="TZ", help="Time zone of --cron, e.g. Europe/Dublin.")
@click.option("--start-at", metavar="ISO", help="No occurrence before this ISO 8601 time.")
@click.option("--end-at", metavar="ISO", help="No occurrence after this ISO 8601 time.")
@click.option(
    "--jitter", metavar="SECONDS", type=float, help="Send each occurrence up to SECONDS late."
)
@click.option(
    "--arg",
    "args",
    metavar="KEY=VALUE",
    multiple=True,
    help="A task argument; VALUE is JSON or a string. Repeatable.",
)
@click.option("--force", is_flag=True, help="Replace the instance even while it runs.")
@click.option(
    "--max-runs", type=int, default=None, help="End the instance after this many settled runs."
)
@json_option
@click.pass_context
def schedule(
    ctx: click.Context,
    task: str,
    instance: str,
    cron: str | None,
    interval: float | None,
    at: str | None,
    zone: str | None,
    start_at: str | None,
    end_at: str | None,
    jitter: float | None,
    args: tuple[str, ...],
    force: bool,
    max_runs: int | None,
    as_json: bool,
) -> None:
    """Create or replace a dynamic instance of TASK named INSTANCE."""
    if sum(v is not None for v in (cron, interval, at)) != 1:
        raise click.UsageError("give exactly one of --cron, --interval, --at")
    arguments: dict[str, Any] = {}
    for item in args:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--arg {item!r}: expected KEY=VALUE")
        arguments[key] = _parse_value(text)
    extension = extension_of(ctx)
    try:
        state = extension.schedule_task(
            task,
            instance,
            schedule=cron,
            interval=None if interval is None else bounds.seconds(interval, "interval"),
            execute_at=None if at is None else parse_time(at, "--at"),
            timezone=zone,
            force=force,
            args=arguments,
            start_at=None if start_at is None else parse_time(start_at, "--start-at"),
            end_at=None if end_at is None else parse_time(end_at, "--end-at"),
            jitter=None if jitter is None else bounds.seconds(jitter, "jitter"),
            max_runs=max_runs,
        )
    except (PyncetteError, ValueError, OverflowError) as exc:
        fail(exc)
    _emit_states([state], as_json)


@pyncette.command(name="unschedule")
@click.argument("task")
@click.argument("instance")
@click.option("--missing-ok", is_flag=True, help="Succeed when the instance does not exist.")
@json_option
@click.pass_context
def unschedule(
    ctx: click.Context, task: str, instance: str, missing_ok: bool, as_json: bool
) -> None:
    """Remove the dynamic instance INSTANCE of TASK."""
    extension = extension_of(ctx)
    try:
        removed = extension.unschedule_task(task, instance)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    if not removed and not missing_ok:
        raise click.ClickException(f"task {task!r} has no instance {instance!r}")
    emit(
        [{"task": task, "instance": instance, "removed": removed}],
        ["task", "instance", "removed"],
        as_json,
    )
