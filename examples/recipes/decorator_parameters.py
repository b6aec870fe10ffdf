"""Every option of ``@pyncette.task``, one task each.

Run: ``celery -A examples.recipes.decorator_parameters worker -B -S pyncette``.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from celery import Celery

from celery_pyncette import Context, ExecutionMode, FailureMode, Pyncette

logger = logging.getLogger(__name__)

app = Celery("recipes", broker=os.environ.get("RECIPES_BROKER", "memory://"))
pyncette = Pyncette(app, url=os.environ.get("RECIPES_STORE", "sqlite:///recipes.sqlite3"))


@pyncette.task(schedule="* * * * * */10")
def every_10_seconds(context: Context) -> None:
    """A 6-field cron: the 6th field is seconds."""
    logger.info("every 10 seconds, due %s", context.scheduled_at)


@pyncette.task(interval=timedelta(seconds=12))
async def every_12_seconds(context: Context) -> None:
    """A fixed interval; ``async def`` works too."""
    logger.info("every 12 seconds")


@pyncette.task(schedule="0 12 * * *", timezone="Europe/Dublin")
def noon_in_dublin(context: Context) -> None:
    """Noon in Dublin, summer and winter: evaluated in local time."""


@pyncette.task(
    schedule="*/5 * * * *",
    execution_mode=ExecutionMode.AT_MOST_ONCE,
    name="recipes.fire_and_forget",
)
def fire_and_forget(context: Context) -> None:
    """Committed before it is sent: never retried, never duplicated."""


@pyncette.task(
    interval=timedelta(minutes=1),
    failure_mode=FailureMode.UNLOCK,
    lease_duration=timedelta(seconds=30),
)
def retry_on_the_next_tick(context: Context) -> None:
    """A failure releases the lease, so the occurrence is sent again on the next tick."""


@pyncette.task(schedule="0 * * * *", catch_up=True)
def replay_missed_hours(context: Context) -> None:
    """After downtime, every missed hour runs, each with its own ``scheduled_at``."""


@pyncette.task(schedule="0 0 * * *", enabled=False)
def switched_off(context: Context) -> None:
    """Declared but not scheduled."""


@pyncette.task(schedule="0 6 * * *", name="recipes.greet_abra", queue="greetings", username="abra")
@pyncette.task(
    schedule="0 7 * * *", name="recipes.greet_cadabra", queue="greetings", username="cadabra"
)
def greet(context: Context) -> str:
    """Two schedules on one function; extra keywords arrive as ``context.args``."""
    return f"Hello {context.args['username']}"
