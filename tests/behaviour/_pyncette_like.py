"""An app for the ports that build their own (themes 9-22): Pyncette's defaults on ``memory://``.

The time helpers are the package's (:mod:`tests.behaviour`), under the names these ports use.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery

from celery_pyncette import Pyncette
from tests.behaviour import T0, at, sched, starts

__all__ = ["T0", "after", "pyncette_like", "scheduled", "started"]

after, scheduled, started = at, sched, starts


def pyncette_like(**settings: Any) -> Pyncette:
    """An app of its own with Pyncette's defaults (poll interval 1 s, lease 60 s)."""
    app = Celery(f"behaviour-{uuid.uuid4().hex[:8]}", set_as_current=False)
    return Pyncette(app, **{"url": "memory://", "poll_interval": 1.0, **settings})
