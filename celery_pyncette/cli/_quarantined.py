"""``celery pyncette quarantined``: the records taken out of scheduling, and why."""

from __future__ import annotations

import click

from celery_pyncette._read_model import quarantined_row
from celery_pyncette.cli._common import emit, extension_of, fail, json_option, pyncette
from celery_pyncette.errors import PyncetteError

COLUMNS = ("task", "instance", "partition", "since", "reason")


@pyncette.command(name="quarantined")
@click.option("--task", metavar="TASK", help="Only this task's records.")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=10000),
    default=100,
    show_default=True,
    help="List at most this many.",
)
@json_option
@click.pass_context
def quarantined(ctx: click.Context, task: str | None, limit: int, as_json: bool) -> None:
    """Records that cannot be decoded or computed, so beat no longer claims them.

    Each stays out until it is repaired (`schedule` / schedule_task on its instance; a static
    task's record is rewritten when beat starts) or removed (`unschedule` / unschedule_task).
    The instance is empty (-) for a static task's record. A task that is no longer declared may
    be given by its stored name.
    """
    extension = extension_of(ctx)
    try:
        name = None
        if task is not None:
            try:
                name = extension.definition(task).name
            except ValueError:
                name = task  # records of a task since removed from the code
        found = extension.store.list_quarantined(name, limit + 1)
    except PyncetteError as exc:
        fail(exc)
    emit([quarantined_row(q) for q in found[:limit]], COLUMNS, as_json)
    if len(found) > limit:
        click.echo(f"more than {limit} quarantined record(s); raise --limit to see them", err=True)
