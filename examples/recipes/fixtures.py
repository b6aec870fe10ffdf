"""Fixtures: a database connection and a log file, set up once per worker process.

Available as ``context.db`` and ``context.log``; torn down in reverse order at worker shutdown.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import TextIO

from celery import Celery

from celery_pyncette import Context, Pyncette

app = Celery("recipes-fixtures", broker=os.environ.get("RECIPES_BROKER", "memory://"))
pyncette = Pyncette(app, url=os.environ.get("RECIPES_STORE", "sqlite:///recipes.sqlite3"))


@pyncette.fixture(name="db")
def database() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(
        os.environ.get("RECIPES_DATABASE", ":memory:"), check_same_thread=False
    )
    yield connection
    connection.close()


@pyncette.fixture(name="log")
async def log_file() -> AsyncIterator[TextIO]:
    """Async generators work too."""
    handle = open(os.environ.get("RECIPES_LOG", os.devnull), "a", encoding="utf-8")  # noqa: SIM115
    yield handle
    handle.close()


@pyncette.task(schedule="*/5 * * * *", name="recipes.count_tables")
def count_tables(context: Context) -> int:
    (count,) = context.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    context.log.write(f"{context.scheduled_at} tables={count}\n")
    context.log.flush()
    return int(count)
