"""What the ports of themes 9-22 share: Pyncette's start time and settings, and offsets."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from celery import Celery

from celery_pyncette import Pyncette
from celery_pyncette.testing import Execution

#: Where Pyncette's fake clock starts.
T0 = datetime(2019, 1, 1, tzinfo=timezone.utc)


def pyncette_like(**settings: Any) -> Pyncette:
    """An app of its own with Pyncette's defaults (poll interval 1 s, lease 60 s)."""
    app = Celery(f"behaviour-{uuid.uuid4().hex[:8]}", set_as_current=False)
    return Pyncette(app, **{"url": "memory://", "poll_interval": 1.0, **settings})


def seconds(moment: datetime | None) -> float:
    """``moment`` as seconds after :data:`T0`."""
    assert moment is not None
    return (moment - T0).total_seconds()


def scheduled(runs: Iterable[Execution]) -> list[float]:
    """The runs' ``scheduled_at`` as seconds after :data:`T0`."""
    return [seconds(r.scheduled_at) for r in runs]


def started(runs: Iterable[Execution]) -> list[float]:
    """The runs' ``started_at`` as seconds after :data:`T0`."""
    return [seconds(r.started_at) for r in runs]


def after(s: float) -> datetime:
    """:data:`T0` plus ``s`` seconds."""
    return T0 + timedelta(seconds=s)
