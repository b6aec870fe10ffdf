"""Operating commands: migrate, status, repartition, import."""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from celery_pyncette import _clock as clock
from celery_pyncette import _overview
from celery_pyncette._extension import Pyncette
from celery_pyncette._read_model import health_row
from celery_pyncette.cli._common import (
    emit,
    extension_of,
    fail,
    json_option,
    print_json,
    pyncette,
    table,
)
from celery_pyncette.errors import PyncetteError


@pyncette.command(name="migrate")
@json_option
@click.pass_context
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Create or upgrade the store's tables and indexes."""
    extension = extension_of(ctx)
    try:
        extension.store.setup()
    except PyncetteError as exc:
        fail(exc)
    emit([{"store": extension.settings.url, "status": "ready"}], ["store", "status"], as_json)


@pyncette.command(name="status")
@click.option("--no-backlog", is_flag=True, help="Skip counting due instances (reads them all).")
@click.option(
    "--forget-stale",
    is_flag=True,
    help="First remove the records of stale beats (killed without a clean stop).",
)
@json_option
@click.pass_context
def status(ctx: click.Context, no_backlog: bool, forget_stale: bool, as_json: bool) -> None:
    """Beats alive, the partitions each polls, the due backlog; exit 1 when unhealthy.

    Unhealthy: no beat reported within the last 30 seconds, or a beat stopped reporting.
    Quarantined records are a warning (count and first keys; `quarantined` lists them).
    """
    extension = extension_of(ctx)
    try:
        now = extension.now()  # the store's clock, which beats report by
        forgotten = _overview.forget_stale_beats(extension, now) if forget_stale else []
        found = _overview.health(extension, now, with_backlog=not no_backlog)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    report = health_row(found)
    if as_json:
        print_json({**report, "forgotten": forgotten})
    else:
        for owner in forgotten:
            click.echo(f"forgot stale beat {owner}")
        beats = [{**row, "polls": _polls(row["partitions"])} for row in report["beats"]]
        table(beats, ["beat", "state", "age", "last_tick", "polls"])
        if report["backlog"] is not None:
            click.echo()
            table(report["backlog"], ["task", "due", "running", "oldest_due", "overdue"])
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
    "--from-pyncette",
    metavar="STORE_URL",
    help="A Pyncette 1.x store (sqlite:///PATH, postgresql://..., redis://...): write its dynamic "
    "instances into this store.",
)
@click.option(
    "--task",
    "task_map",
    multiple=True,
    metavar="PYNCETTE_NAME=TASK",
    help="With --from-pyncette: the declared task a Pyncette task's instances go to (repeatable; "
    "unmapped tasks keep their name).",
)
@click.option(
    "--pyncette-table",
    default="pyncette_tasks",
    show_default=True,
    help="Pyncette's SQL table (its sqlite_table_name / postgres_table_name).",
)
@click.option(
    "--pyncette-namespace",
    default="",
    help="Pyncette's redis_namespace.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="With --from-pyncette: print what would be written, write nothing.",
)
@click.option(
    "--force", is_flag=True, help="With --from-pyncette: replace instances running here too."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the generated beat_schedule module here instead of stdout.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    from_beat_schedule: bool,
    from_redbeat: str | None,
    redbeat_prefix: str,
    from_django_celery_beat: str | None,
    table_prefix: str,
    from_pyncette: str | None,
    task_map: tuple[str, ...],
    pyncette_table: str,
    pyncette_namespace: str,
    dry_run: bool,
    force: bool,
    output: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Bring an existing schedule over from beat_schedule, RedBeat, django-celery-beat or Pyncette.

    RedBeat and django-celery-beat entries are Celery tasks by name; here they become a
    beat_schedule module to add to your Celery config (each entry validated the way beat will run
    it). Entries that cannot be converted are listed with the reason.

    Pyncette's dynamic instances are written into this store under the declared dynamic task of
    the same name (or the one --task maps it to), each with its timing, arguments and next run (an
    overdue one is due now), in the partition this task's selector picks. Everything is checked
    before anything is written.
    """
    chosen = [
        from_beat_schedule,
        from_redbeat is not None,
        from_django_celery_beat is not None,
        from_pyncette is not None,
    ]
    if sum(chosen) != 1:
        raise click.UsageError(
            "give exactly one of --from-beat-schedule, --from-redbeat, --from-django-celery-beat, "
            "--from-pyncette"
        )
    if from_pyncette is None and (task_map or dry_run or force):
        raise click.UsageError("--task, --dry-run and --force go with --from-pyncette")
    extension = extension_of(ctx)
    if from_beat_schedule:
        _import_beat_schedule(extension, as_json)
        return
    if from_pyncette is not None:
        from celery_pyncette.cli._pyncette_import import import_pyncette

        import_pyncette(
            ctx,
            extension,
            from_pyncette,
            mapping=_task_map(task_map),
            sql_table=pyncette_table,
            namespace=pyncette_namespace,
            dry_run=dry_run,
            force=force,
            as_json=as_json,
        )
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
        fail(exc)
    except Exception as exc:  # the redis client's errors: no import of redis here
        if type(exc).__module__.split(".")[0] != "redis":
            raise
        fail(exc)
    module = importers.render_module(result, clock.utcnow())
    if output is not None:
        if os.path.exists(output) and not overwrite:
            raise click.ClickException(f"{output} exists; pass --overwrite to replace it")
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(module)
    if as_json:
        print_json({**result.as_json(), "output": output})
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
        table(rows, ["name", "task", "schedule", "enabled"])
        click.echo(f"wrote {len(result.entries)} entries to {output}")
    for skipped in result.skipped:
        click.echo(f"skipped {skipped.name}: {skipped.reason}", err=True)
    for entry in result.entries:
        for note in entry.notes:
            click.echo(f"note {entry.name}: {note}", err=True)


def _task_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = (part.strip() for part in pair.partition("="))
        if not sep or not source or not target:
            raise click.BadParameter(f"{pair!r}: give PYNCETTE_NAME=TASK", param_hint="'--task'")
        if mapping.get(source, target) != target:
            raise click.BadParameter(
                f"{source!r} is mapped twice ({mapping[source]!r}, {target!r})",
                param_hint="'--task'",
            )
        mapping[source] = target
    return mapping


def _import_beat_schedule(extension: Pyncette, as_json: bool) -> None:
    """Write the app's beat_schedule entries into the store now, as beat would at start-up."""
    from celery_pyncette._dispatch import sync_static

    try:
        definitions = list(extension.beat_schedule_definitions().values())
        sync_static(extension.runtime, definitions, extension.now())
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
        fail(exc)
    emit(rows, ["name", "task", "schedule", "next_run"], as_json)


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
@json_option
@click.pass_context
def repartition(ctx: click.Context, task: str, to: int, as_json: bool) -> None:
    """Move a dynamic task's stored instances to N partitions.

    Run it after changing partition_count in code, and after upgrading from 0.1.0 (same N: it
    moves the instances from 0.1.0's modulo selector to Pyncette's range selector; stop the 0.1.0
    processes first): beat refuses to poll the task until its instances are moved. Running
    instances stay where they are; exit status 1 then says to run it again once they finished.
    """
    from celery_pyncette._partitions import repartition as move

    extension = extension_of(ctx)
    try:
        definition = extension.definition(task)
        if not definition.dynamic:
            raise ValueError(f"{task!r} is a static task: it has no partitions")
        result = move(extension.store, definition, to, extension.now())
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    row = {
        "task": definition.name,
        "partitions": to,
        "moved": result.moved,
        "kept": result.kept,
        "running": len(result.locked),
        "complete": result.complete,
    }
    emit([row], ["task", "partitions", "moved", "kept", "running", "complete"], as_json)
    if not result.complete:
        click.echo(
            f"{len(result.locked)} running instance(s) were not moved; run this again once they "
            "finish",
            err=True,
        )
        ctx.exit(1)
