"""Heartbeats: keep the lease of a long at-least-once execution alive.

``context.heartbeat()`` extends the lease by ``lease_duration`` (and raises ``LeaseLostError`` once
it was lost); ``@with_heartbeat()`` does it in the background for the whole run.
"""

from __future__ import annotations

import os
from datetime import timedelta

from celery import Celery

from celery_pyncette import Context, LeaseLostError, Pyncette, with_heartbeat

app = Celery("recipes-heartbeat", broker=os.environ.get("RECIPES_BROKER", "memory://"))
pyncette = Pyncette(app, url=os.environ.get("RECIPES_STORE", "sqlite:///recipes.sqlite3"))


def process(item: int) -> int:
    return item * 2


@pyncette.task(schedule="0 * * * *", lease_duration=timedelta(seconds=30), name="recipes.batch")
def batch(context: Context) -> list[int]:
    """Heartbeats between items; stops cleanly when the lease was lost."""
    done = []
    for item in range(int(context.args.get("items", 5))):
        try:
            context.heartbeat()
        except LeaseLostError:
            break  # another worker owns this occurrence now
        done.append(process(item))
    return done


@pyncette.task(schedule="30 * * * *", lease_duration=timedelta(seconds=30), name="recipes.crunch")
@with_heartbeat()
def crunch(context: Context) -> bool:
    """Heartbeats every 15 s in a background thread for as long as it runs."""
    return not context.lease_lost
