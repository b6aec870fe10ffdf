"""``celery pyncette history TASK [INSTANCE]``: the last settled runs of an instance."""

from __future__ import annotations

import click

from celery_pyncette._read_model import run_row
from celery_pyncette.cli._common import emit, extension_of, fail, json_option, pyncette
from celery_pyncette.errors import PyncetteError

#: The columns of the text table, in order.
RUN_COLUMNS = ("scheduled_at", "started_at", "finished_at", "status", "worker", "error")


@pyncette.command(name="history")
@click.argument("task")
@click.argument("instance", required=False)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Most runs to show.",
)
@json_option
@click.pass_context
def history(ctx: click.Context, task: str, instance: str | None, limit: int, as_json: bool) -> None:
    """The last settled runs of a static task or of one dynamic instance, newest first.

    How many are kept is the pyncette_history_size setting (20 by default; 0 keeps none).
    """
    extension = extension_of(ctx)
    try:
        runs = extension.history(task, instance, limit=limit)
    except (PyncetteError, ValueError) as exc:
        fail(exc)
    emit([run_row(run) for run in runs], RUN_COLUMNS, as_json)
