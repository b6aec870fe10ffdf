"""Pyncette 1.1's own test suite, ported: each behaviour it checks, checked on celery-pyncette.

docs/pyncette-behaviours.md lists every Pyncette test beside its port here. The numbers are
comparable with Pyncette's: its fake clock starts at 2019-01-01 00:00 UTC (:data:`T0`) and its
scheduler polls every second, as the apps of these tests do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from celery_pyncette.testing import Execution

#: Where Pyncette's fake clock starts.
T0 = datetime(2019, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after :data:`T0`."""
    return T0 + timedelta(seconds=seconds)


def sched(runs: Sequence[Execution]) -> list[float]:
    """The ``scheduled_at`` of each execution, in seconds after :data:`T0`."""
    return [_seconds(run.scheduled_at) for run in runs]


def starts(runs: Sequence[Execution]) -> list[float]:
    """The ``started_at`` of each execution, in seconds after :data:`T0`."""
    return [_seconds(run.started_at) for run in runs]


def finishes(runs: Sequence[Execution]) -> list[float | None]:
    """The ``finished_at`` of each execution, in seconds after :data:`T0` (None: still open)."""
    return [None if run.finished_at is None else _seconds(run.finished_at) for run in runs]


def outcomes(runs: Sequence[Execution]) -> list[str]:
    """The outcome of each execution."""
    return [run.outcome for run in runs]


def _seconds(moment: datetime | None) -> float:
    if moment is None:
        raise AssertionError("an execution without a time")
    return (moment - T0).total_seconds()
