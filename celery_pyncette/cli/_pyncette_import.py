"""``celery pyncette import --from-pyncette URL``: a Pyncette 1.x store's instances, written here.

Prints one row per instance (its Pyncette task and partition, the task and partition here, the
timing, the next run, the arguments), after writing or, with ``--dry-run``, instead of it. Static
Pyncette tasks are named on stderr: their schedule is code, declared again with
``@pyncette.task``. Instances running here are left as they are unless ``--force``; they are listed
and the exit status is 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from celery_pyncette._extension import Pyncette
from celery_pyncette.cli._common import fail, print_json, table
from celery_pyncette.errors import PyncetteError

COLUMNS = ["source", "task", "instance", "partition", "schedule", "next_run", "args"]


def import_pyncette(
    ctx: click.Context,
    extension: Pyncette,
    url: str,
    *,
    mapping: Mapping[str, str],
    sql_table: str,
    namespace: str,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    from celery_pyncette import importers

    try:
        found = importers.read_pyncette(url, table=sql_table, namespace=namespace)
        planned = importers.plan_pyncette_import(extension, found, mapping)
        locked = [] if dry_run else importers.write_pyncette_import(extension, planned, force=force)
    except (PyncetteError, ValueError, OSError) as exc:
        fail(exc)
    except Exception as exc:  # the redis client's errors: no import of redis here
        if type(exc).__module__.split(".")[0] != "redis":
            raise
        fail(exc)
    rows = [item.as_row() for item in planned]
    if as_json:
        print_json(
            {
                "source": found.source,
                "dry_run": dry_run,
                "instances": rows,
                "locked": locked,
                "static_tasks": found.static_tasks,
            }
        )
    else:
        table(rows, COLUMNS)
        tasks = len({row["task"] for row in rows})
        if dry_run:
            click.echo(f"would write {len(rows)} instance(s) of {tasks} task(s); nothing written")
        else:
            click.echo(f"wrote {len(rows) - len(locked)} instance(s) of {tasks} task(s)")
    for name in sorted(set(mapping) - {item.source.task for item in planned}):
        click.echo(f"note: --task {name}=...: the source has no instance of {name!r}", err=True)
    for name in found.static_tasks:
        click.echo(
            f"note: static task {name!r} not imported: declare it in code (@pyncette.task)",
            err=True,
        )
    if locked:
        click.echo(
            f"not written, running here (--force replaces them): {', '.join(locked)}", err=True
        )
        ctx.exit(1)
