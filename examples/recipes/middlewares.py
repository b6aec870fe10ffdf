"""Middlewares: logging, retrying, and a database transaction around every execution.

They run in declaration order, the first outermost. ``transaction`` uses the ``db`` fixture.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

from celery import Celery

from celery_pyncette import Context, Pyncette

logger = logging.getLogger(__name__)

app = Celery("recipes-middlewares", broker=os.environ.get("RECIPES_BROKER", "memory://"))
pyncette = Pyncette(app, url=os.environ.get("RECIPES_STORE", "sqlite:///recipes.sqlite3"))
DATABASE = os.environ.get("RECIPES_DATABASE", ":memory:")


@pyncette.middleware
def log_execution(context: Context, call_next: Callable[[], Any]) -> Any:
    """Log every execution with its duration and outcome."""
    started = time.monotonic()
    try:
        result = call_next()
    except Exception:
        logger.exception("%s failed after %.3fs", context.task.name, time.monotonic() - started)
        raise
    logger.info("%s succeeded in %.3fs", context.task.name, time.monotonic() - started)
    return result


@pyncette.middleware
def retry(context: Context, call_next: Callable[[], Any]) -> Any:
    """Retry a failing execution in place, up to three attempts, before the failure mode applies."""
    for attempt in range(1, 4):
        try:
            return call_next()
        except ConnectionError:
            if attempt == 3:
                raise
            logger.warning("%s attempt %d failed; retrying", context.task.name, attempt)
    return None


@pyncette.middleware
def transaction(context: Context, call_next: Callable[[], Any]) -> Any:
    """Commit the fixture connection's work on success, roll it back on failure."""
    db: sqlite3.Connection = context.db
    try:
        result = call_next()
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return result


@pyncette.fixture(name="db")
def database() -> Iterator[sqlite3.Connection]:
    """One connection per worker process."""
    connection = sqlite3.connect(DATABASE, check_same_thread=False)
    connection.execute("CREATE TABLE IF NOT EXISTS visits (who TEXT)")
    connection.commit()
    yield connection
    connection.close()


@pyncette.task(schedule="* * * * *", name="recipes.record_visit", who="scheduler")
def record_visit(context: Context) -> None:
    """Writes through the transaction; a failure after the write leaves nothing behind."""
    context.db.execute("INSERT INTO visits VALUES (?)", (context.args["who"],))
    if context.args.get("fail"):
        raise RuntimeError("fails after writing")


FLAKY_CALLS: list[int] = []


@pyncette.task(schedule="* * * * *", name="recipes.flaky")
def flaky(context: Context) -> str:
    """Fails twice with a connection error, then succeeds: the retry middleware hides it."""
    FLAKY_CALLS.append(1)
    if len(FLAKY_CALLS) < 3:
        raise ConnectionError("upstream hiccup")
    return "ok"
