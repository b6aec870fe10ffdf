"""Theme 5, persistence and restarts: Pyncette's ``test_persistence``, on a SQLite file that
outlives each simulated process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette.testing import Execution, simulate
from tests.behaviour import T0, at, sched, starts
from tests.behaviour.conftest import MakePyncette


def _process(make_pyncette: MakePyncette, *, catch_up: bool = False) -> tuple[Pyncette, Any]:
    """One process of the app: a fresh app declaring the per-minute dynamic template."""
    pyncette = make_pyncette()

    @pyncette.dynamic_task(catch_up=catch_up)
    def minutely(context: Context) -> None: ...

    return pyncette, minutely


def _run(
    make_pyncette: MakePyncette, url: str, start_after: float, run_for: float = 0, **kw: bool
) -> list[Execution]:
    """Start a process ``start_after`` seconds after T0 on ``url``, tick once (and go on for
    ``run_for`` seconds), stop; return its executions."""
    pyncette, minutely = _process(make_pyncette, **kw)
    with simulate(pyncette, start=at(start_after), url=url) as sim:
        sim.advance(timedelta(seconds=run_for))
        return sim.executions(minutely, "1")


def test_persistence(make_pyncette: MakePyncette, tmp_path: Path) -> None:
    """Pyncette: instance "1" (``* * * * *``) scheduled at T0 by a process that then stops
    survives it: a process started at +30 s runs nothing in its one tick; one started at +60 s
    runs the 00:01:00 occurrence."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    pyncette, minutely = _process(make_pyncette)
    with simulate(pyncette, start=T0, url=url):
        pyncette.schedule_task(minutely, "1", schedule="* * * * *")

    assert _run(make_pyncette, url, 30) == []
    (run,) = _run(make_pyncette, url, 60)
    assert (run.scheduled_at, run.started_at, run.outcome) == (at(60), at(60), "success")


@pytest.mark.parametrize(
    ("catch_up", "expected"), [(False, [60, 360]), (True, [60, 120, 180, 240, 300, 360])]
)
def test_persistence_restart_after_missed_runs(
    make_pyncette: MakePyncette, tmp_path: Path, catch_up: bool, expected: list[float]
) -> None:
    """Pyncette: (not a test of its own; its commit rule) a restart after five missed minutes
    replays 00:01 ... 00:05, each once, then goes on.

    Ours with ``catch_up=True`` does the same; our default differs on purpose: the overdue
    00:01 occurrence runs once at the restart (it covers 00:02 ... 00:05) and the schedule goes
    on from now, at 00:06."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    pyncette, minutely = _process(make_pyncette, catch_up=catch_up)
    with simulate(pyncette, start=T0, url=url):
        pyncette.schedule_task(minutely, "1", schedule="* * * * *")

    runs = _run(make_pyncette, url, 5 * 60 + 30, run_for=31, catch_up=catch_up)

    assert sched(runs) == expected
    restart = 5 * 60 + 30
    if catch_up:  # one replay per 1 s poll, then 00:06 on time
        assert starts(runs) == [restart + i for i in range(5)] + [360]
    else:
        assert starts(runs) == [restart, 360]
