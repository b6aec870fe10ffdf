"""Commands that add extra occurrences: ``run`` (one now) and ``backfill`` (a past window)."""

from __future__ import annotations

import click

from celery_pyncette._backfill import DEFAULT_MAX
from celery_pyncette.cli._common import emit, extension_of, fail, json_option, parse_time, pyncette
from celery_pyncette.errors import PyncetteError


@pyncette.command(name="run")
@click.argument("task")
@click.argument("instance", required=False)
@click.option("--force", is_flag=True, help="Run it even while it is running.")
@json_option
@click.pass_context
def run(ctx: click.Context, task: str, instance: str | None, force: bool, as_json: bool) -> None:
    """Send one extra occurrence of TASK (of its INSTANCE, for a dynamic task) now.

    Beat sends it on its next tick; the schedule's next run does not move."""
    extension = extension_of(ctx)
    try:
        at = extension.run_now(task, instance, force=force)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    emit(
        [{"task": task, "instance": instance, "scheduled_at": at}],
        ["task", "instance", "scheduled_at"],
        as_json,
    )


@pyncette.command(name="backfill")
@click.argument("task")
@click.argument("instance", required=False)
@click.option("--from", "start", metavar="ISO", required=True, help="Window start (with offset).")
@click.option("--to", "end", metavar="ISO", required=True, help="Window end, excluded.")
@click.option(
    "--max",
    "limit",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX,
    show_default=True,
    help="Refuse a window holding more occurrences than this.",
)
@json_option
@click.pass_context
def backfill(
    ctx: click.Context,
    task: str,
    instance: str | None,
    start: str,
    end: str,
    limit: int,
    as_json: bool,
) -> None:
    """Run each occurrence TASK (or its INSTANCE) had from --from to --to once.

    Occurrences of a window backfilled before are not run again; the schedule does not move."""
    extension = extension_of(ctx)
    try:
        written = extension.backfill(
            task,
            instance,
            start=parse_time(start, "--from"),
            end=parse_time(end, "--to"),
            max=limit,
        )
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    emit(
        [{"task": task, "instance": instance, "scheduled_at": at} for at in written],
        ["task", "instance", "scheduled_at"],
        as_json,
    )
    if not as_json:
        click.echo(f"{len(written)} occurrence(s) to run", err=True)
