"""``celery -A proj pyncette ...``: inspect and control schedules from a terminal.

Registered through the ``celery.commands`` entry point, so Celery's own options (``-A``, ``-b``,
``--config``) and the app's preload options apply. Every command prints an aligned table, or JSON
with ``--json``. Errors are one line on stderr and exit status 1; ``status`` exits 1 when the
scheduler is unhealthy, so it doubles as a health check.

Values given on the command line (``--arg key=VALUE``, ``--where PARAM OP VALUE``) are read as JSON
when they parse (``42``, ``true``, ``"42"``, ``[1, 2]``) and as plain strings otherwise (``bill``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

import click

from celery_pyncette import clock, overview
from celery_pyncette.errors import PyncetteError
from celery_pyncette.extension import STRIKE_OPERATORS, Pyncette, extension_for
from celery_pyncette.state import TaskState
from celery_pyncette.stores.base import Strike

F = TypeVar("F", bound=Callable[..., Any])

#: Keywords of ``schedule_task`` that cannot be task arguments.
_RESERVED_ARGS = frozenset({"schedule", "interval", "execute_at", "timezone", "force"})


# --- plumbing ------------------------------------------------------------------------------------


def _pyncette(ctx: click.Context) -> Pyncette:
    app = getattr(ctx.find_root().obj, "app", None)
    if app is None:
        raise click.UsageError("no Celery app: run as `celery -A proj pyncette ...`")
    try:
        return extension_for(app)
    except PyncetteError as exc:
        _fail(exc)


def _json_option(function: F) -> F:
    decorated: F = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(
        function
    )
    return decorated


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, default=_json_default, indent=2))


def _emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        _print_json(list(rows))
        return
    _table(rows, columns)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
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


def _fail(exc: Exception) -> NoReturn:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc) is not ValueError:
        message = f"{type(exc).__name__}: {message}"
    raise click.ClickException(message)


def _value(text: str) -> Any:
    """JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _state_row(state: TaskState) -> dict[str, Any]:
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


_STATE_COLUMNS = (
    "task",
    "instance",
    "schedule",
    "scheduled_at",
    "locked_until",
    "last_run_at",
    "last_status",
    "args",
)


def _strike_row(strike: Strike) -> dict[str, Any]:
    return {
        "task": strike.task,
        "parameter": strike.parameter,
        "operator": strike.operator,
        "value": strike.value,
    }


# --- the group -----------------------------------------------------------------------------------


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
    """Every task with its kind, schedule, instance count and (static tasks) next run."""
    extension = _pyncette(ctx)
    try:
        summaries = overview.summarize(extension)
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    rows = [
        {
            "task": s.name,
            "kind": s.kind,
            "schedule": s.schedule,
            "instances": s.instances,
            "next_run": s.next_run,
            "enabled": s.enabled,
            "celery_task": s.celery_name,
            "source": s.source,
            "execution_mode": s.execution_mode,
            "failure_mode": s.failure_mode,
            "partitions": s.partition_count,
        }
        for s in summaries
    ]
    _emit(rows, ["task", "kind", "schedule", "instances", "next_run", "enabled"], as_json)


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
@_json_option
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
    extension = _pyncette(ctx)
    more = False
    try:
        definition = extension.definition(task)
        if definition.dynamic and instance is None:
            page = overview.find_instances(extension, task, limit=limit, prefix=prefix)
            states, more = page.tasks, page.continuation_token is not None
        else:
            state = extension.get_task_state(task, instance)
            if state is None:
                what = f"instance {instance!r} of task {task!r}" if instance else f"task {task!r}"
                raise click.ClickException(f"no stored state for {what}")
            states = [state]
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    _emit([_state_row(s) for s in states], _STATE_COLUMNS, as_json)
    if more:
        click.echo(f"(first {limit} instances; use --limit or --prefix for others)", err=True)


@pyncette.command(name="schedule")
@click.argument("task")
@click.argument("instance")
@click.option("--cron", metavar="EXPR", help="Cron expression (5 fields, or 6 with seconds last).")
@click.option("--interval", metavar="SECONDS", type=float, help="Run every SECONDS.")
@click.option("--at", "at", metavar="ISO", help="Run once at this ISO 8601 time (with offset).")
@click.option("--timezone", "zone", metavar="TZ", help="Time zone of --cron, e.g. Europe/Dublin.")
@click.option(
    "--arg",
    "args",
    metavar="KEY=VALUE",
    multiple=True,
    help="A task argument; VALUE is JSON or a string. Repeatable.",
)
@click.option("--force", is_flag=True, help="Replace the instance even while it runs.")
@_json_option
@click.pass_context
def schedule(
    ctx: click.Context,
    task: str,
    instance: str,
    cron: str | None,
    interval: float | None,
    at: str | None,
    zone: str | None,
    args: tuple[str, ...],
    force: bool,
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
        if key in _RESERVED_ARGS:
            raise click.UsageError(f"--arg {key!r}: that name is reserved by schedule_task")
        arguments[key] = _value(text)
    extension = _pyncette(ctx)
    try:
        state = extension.schedule_task(
            task,
            instance,
            schedule=cron,
            interval=None if interval is None else timedelta(seconds=interval),
            execute_at=None if at is None else _parse_at(at),
            timezone=zone,
            force=force,
            **arguments,
        )
    except (PyncetteError, ValueError, OverflowError) as exc:
        _fail(exc)
    _emit([_state_row(state)], _STATE_COLUMNS, as_json)


def _parse_at(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"--at {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"--at {text!r} has no UTC offset; add one, e.g. {text}+00:00")
    return value.astimezone(timezone.utc)


@pyncette.command(name="unschedule")
@click.argument("task")
@click.argument("instance")
@click.option("--missing-ok", is_flag=True, help="Succeed when the instance does not exist.")
@_json_option
@click.pass_context
def unschedule(
    ctx: click.Context, task: str, instance: str, missing_ok: bool, as_json: bool
) -> None:
    """Remove the dynamic instance INSTANCE of TASK."""
    extension = _pyncette(ctx)
    try:
        removed = extension.unschedule_task(task, instance)
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    if not removed and not missing_ok:
        raise click.ClickException(f"task {task!r} has no instance {instance!r}")
    _emit(
        [{"task": task, "instance": instance, "removed": removed}],
        ["task", "instance", "removed"],
        as_json,
    )


def _strike_options(function: F) -> F:
    for decorator in reversed(
        (
            click.argument("task", required=False),
            click.option("--all-tasks", is_flag=True, help="Any task with the argument."),
            click.option(
                "--where",
                nargs=3,
                metavar="PARAM OP VALUE",
                help=f"Only where an argument compares true; OP: {' '.join(STRIKE_OPERATORS)}.",
            ),
            _json_option,
            click.pass_context,
        )
    ):
        function = decorator(function)
    return function


def _strike_from(
    task: str | None, all_tasks: bool, where: tuple[str, str, str] | None
) -> tuple[str | None, str | None, str | None, Any]:
    if (task is None) == (not all_tasks):
        raise click.UsageError("give a TASK or --all-tasks (not both)")
    if all_tasks and where is None:
        raise click.UsageError("--all-tasks needs --where PARAM OP VALUE")
    if where is None:
        return task, None, None, None
    parameter, operator, value = where
    return task, parameter, operator, _value(value)


@pyncette.command(name="strike")
@_strike_options
def strike(
    ctx: click.Context,
    task: str | None,
    all_tasks: bool,
    where: tuple[str, str, str] | None,
    as_json: bool,
) -> None:
    """Disable TASK's occurrences (all, or --where an argument matches) until restored."""
    target, parameter, operator, value = _strike_from(task, all_tasks, where)
    extension = _pyncette(ctx)
    try:
        struck = extension.strike(target, parameter, operator, value)
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    _emit([_strike_row(struck)], ["task", "parameter", "operator", "value"], as_json)


@pyncette.command(name="restore")
@click.option("--missing-ok", is_flag=True, help="Succeed when there is no such strike.")
@_strike_options
def restore(
    ctx: click.Context,
    task: str | None,
    all_tasks: bool,
    where: tuple[str, str, str] | None,
    as_json: bool,
    missing_ok: bool,
) -> None:
    """Remove a strike given exactly as it was added."""
    target, parameter, operator, value = _strike_from(task, all_tasks, where)
    extension = _pyncette(ctx)
    try:
        removed = extension.restore(target, parameter, operator, value)
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    if not removed and not missing_ok:
        raise click.ClickException("no such strike (see `celery pyncette strikes`)")
    row = {**_strike_row(Strike(target, parameter, operator, value)), "removed": removed}
    _emit([row], ["task", "parameter", "operator", "value", "removed"], as_json)


@pyncette.command(name="strikes")
@_json_option
@click.pass_context
def strikes(ctx: click.Context, as_json: bool) -> None:
    """Every strike in the store (task "-" means any task)."""
    extension = _pyncette(ctx)
    try:
        found = extension.strikes()
    except PyncetteError as exc:
        _fail(exc)
    rows = [_strike_row(s) for s in sorted(found, key=lambda s: json.dumps(_strike_row(s)))]
    _emit(rows, ["task", "parameter", "operator", "value"], as_json)


@pyncette.command(name="status")
@click.option("--no-backlog", is_flag=True, help="Skip counting due instances (reads them all).")
@click.option(
    "--forget-stale",
    is_flag=True,
    help="First remove the records of stale beats (killed without a clean stop).",
)
@_json_option
@click.pass_context
def status(ctx: click.Context, no_backlog: bool, forget_stale: bool, as_json: bool) -> None:
    """Beats alive, the partitions each polls, the due backlog; exit 1 when unhealthy.

    Unhealthy: no beat reported within the last 30 seconds, or a beat stopped reporting.
    """
    extension = _pyncette(ctx)
    try:
        now = extension.now()  # the store's clock, which beats report by
        forgotten = overview.forget_stale_beats(extension, now) if forget_stale else []
        found = overview.health(extension, now, with_backlog=not no_backlog)
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    beats: list[dict[str, Any]] = [
        {
            "beat": b.owner,
            "hostname": b.hostname,
            "pid": b.pid,
            "started_at": b.started_at,
            "last_tick": b.last_tick,
            "age": now - b.last_tick,
            "state": "stale" if b.is_stale(now) else "alive",
            "partitions": {task: list(parts) for task, parts in b.partitions.items()},
        }
        for b in found.beats
    ]
    backlog = [
        {
            "task": b.task,
            "due": b.due,
            "running": b.running,
            "oldest_due": b.oldest_due,
            "overdue": b.overdue(now),
        }
        for b in found.backlog or []
    ]
    if as_json:
        _print_json(
            {
                "healthy": found.healthy,
                "now": now,
                "beats": beats,
                "backlog": None if found.backlog is None else backlog,
                "problems": found.problems,
                "warnings": found.warnings,
                "forgotten": forgotten,
            }
        )
    else:
        for owner in forgotten:
            click.echo(f"forgot stale beat {owner}")
        for row in beats:
            row["polls"] = _polls(row["partitions"])
        _table(beats, ["beat", "state", "age", "last_tick", "polls"])
        if found.backlog is not None:
            click.echo()
            _table(backlog, ["task", "due", "running", "oldest_due", "overdue"])
        click.echo()
        for warning in found.warnings:
            click.echo(f"warning: {warning}")
        verdict = "healthy" if found.healthy else "UNHEALTHY: " + "; ".join(found.problems)
        click.echo(f"status: {verdict}")
    if not found.healthy:
        ctx.exit(1)


def _polls(partitions: dict[str, list[int]]) -> str:
    parts = []
    for task, numbers in sorted(partitions.items()):
        parts.append(task if numbers == [0] else f"{task}[{_ranges(numbers)}]")
    return ", ".join(parts) or "-"


def _ranges(numbers: Sequence[int]) -> str:
    spans: list[str] = []
    for n in sorted(numbers):
        if spans and n == int(spans[-1].rpartition("-")[2]) + 1:
            start = spans[-1].partition("-")[0]
            spans[-1] = f"{start}-{n}"
        else:
            spans.append(str(n))
    return ",".join(spans)


@pyncette.command(name="import")
@click.option(
    "--from-beat-schedule",
    is_flag=True,
    help="The app's beat_schedule: write its records into the store now.",
)
@click.option("--from-redbeat", metavar="REDIS_URL", help="RedBeat's entries in this Redis.")
@click.option(
    "--redbeat-prefix", default="redbeat:", show_default=True, help="RedBeat's redbeat_key_prefix."
)
@click.option(
    "--from-django-celery-beat",
    metavar="DATABASE_URL",
    help="django-celery-beat's tables (an SQLAlchemy URL, e.g. sqlite:///db.sqlite3).",
)
@click.option(
    "--table-prefix",
    default="django_celery_beat_",
    show_default=True,
    help="Prefix of django-celery-beat's table names.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the generated beat_schedule module here instead of stdout.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@_json_option
@click.pass_context
def import_(
    ctx: click.Context,
    from_beat_schedule: bool,
    from_redbeat: str | None,
    redbeat_prefix: str,
    from_django_celery_beat: str | None,
    table_prefix: str,
    output: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Bring an existing schedule over from beat_schedule, RedBeat or django-celery-beat.

    RedBeat and django-celery-beat entries are Celery tasks by name; here they become a
    beat_schedule module to add to your Celery config (each entry validated the way beat will run
    it). Entries that cannot be converted are listed with the reason.
    """
    chosen = [from_beat_schedule, from_redbeat is not None, from_django_celery_beat is not None]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --from-beat-schedule, --from-redbeat, --from-django-celery-beat"
        )
    extension = _pyncette(ctx)
    if from_beat_schedule:
        _import_beat_schedule(extension, as_json)
        return
    from celery_pyncette import importers

    try:
        if from_redbeat is not None:
            result = importers.from_redbeat(extension.app, from_redbeat, prefix=redbeat_prefix)
        else:
            assert from_django_celery_beat is not None
            result = importers.from_django_celery_beat(
                extension.app, from_django_celery_beat, table_prefix=table_prefix
            )
    except (PyncetteError, ValueError, OSError) as exc:
        _fail(exc)
    except Exception as exc:  # the redis client's errors: no import of redis here
        if type(exc).__module__.split(".")[0] != "redis":
            raise
        _fail(exc)
    module = importers.render_module(result, clock.utcnow())
    if output is not None:
        if os.path.exists(output) and not overwrite:
            raise click.ClickException(f"{output} exists; pass --overwrite to replace it")
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(module)
    if as_json:
        _print_json({**result.as_json(), "output": output})
    elif output is None:
        click.echo(module, nl=False)
    else:
        rows = [
            {
                "name": e.name,
                "task": e.task,
                "schedule": e.pyncette_schedule.description,
                "enabled": e.enabled,
            }
            for e in result.entries
        ]
        _table(rows, ["name", "task", "schedule", "enabled"])
        click.echo(f"wrote {len(result.entries)} entries to {output}")
    for skipped in result.skipped:
        click.echo(f"skipped {skipped.name}: {skipped.reason}", err=True)
    for entry in result.entries:
        for note in entry.notes:
            click.echo(f"note {entry.name}: {note}", err=True)


def _import_beat_schedule(extension: Pyncette, as_json: bool) -> None:
    """Write the app's beat_schedule entries into the store now, as beat would at start-up."""
    from celery_pyncette.dispatch import sync_static

    try:
        definitions = list(extension.beat_schedule_definitions().values())
        sync_static(extension, definitions, extension.now())
        rows = []
        for definition in definitions:
            state = extension.get_task_state(definition.name)
            rows.append(
                {
                    "name": definition.name,
                    "task": definition.celery_name,
                    "schedule": definition.schedule.description if definition.schedule else None,
                    "next_run": state.scheduled_at if state else None,
                }
            )
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    _emit(rows, ["name", "task", "schedule", "next_run"], as_json)


@pyncette.command(name="repartition")
@click.argument("task")
@click.option(
    "--to",
    "to",
    type=click.IntRange(min=1),
    required=True,
    metavar="N",
    help="The new partition_count (as now declared in code).",
)
@_json_option
@click.pass_context
def repartition(ctx: click.Context, task: str, to: int, as_json: bool) -> None:
    """Move a dynamic task's stored instances to N partitions.

    Run it after changing partition_count in code: beat refuses to poll the task until its
    instances are moved. Running instances stay where they are; exit status 1 then says to run it
    again once they finished.
    """
    from celery_pyncette.partitions import repartition as move

    extension = _pyncette(ctx)
    try:
        definition = extension.definition(task)
        if not definition.dynamic:
            raise ValueError(f"{task!r} is a static task: it has no partitions")
        result = move(extension.store, definition, to, extension.now())
    except (PyncetteError, ValueError) as exc:
        _fail(exc)
    row = {
        "task": definition.name,
        "partitions": to,
        "moved": result.moved,
        "kept": result.kept,
        "running": len(result.locked),
        "complete": result.complete,
    }
    _emit([row], ["task", "partitions", "moved", "kept", "running", "complete"], as_json)
    if not result.complete:
        click.echo(
            f"{len(result.locked)} running instance(s) were not moved; run this again once they "
            "finish",
            err=True,
        )
        ctx.exit(1)
