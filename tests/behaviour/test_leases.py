"""Theme 7, leases and overlap: Pyncette's ``test_unlock_lease_expires``,
``test_locked_while_executing``, ``test_lease_is_taken_over_if_expired`` and
``test_not_locked_while_executing_if_best_effort_is_used``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, ExecutionMode, FailureMode, Pyncette
from celery_pyncette.testing import Execution, simulate, sleep
from tests.behaviour import T0, at, finishes, outcomes, sched, starts


def most_open_at_once(runs: Sequence[Execution]) -> int:
    """The most executions open at one instant (one that finishes as another starts: not open
    together)."""
    edges = []
    for run in runs:
        edges.append((run.started_at, 1))
        if run.finished_at is not None:
            edges.append((run.finished_at, -1))
    open_now = most = 0
    for _, step in sorted(edges):
        open_now += step
        most = max(most, open_now)
    return most


def test_unlock_lease_expires(pyncette: Pyncette) -> None:
    """Pyncette: every 2 s, a 2 s lease, ``UNLOCK``, each run sleeps 3 s then fails: the +2
    occurrence is re-sent each time its lease expires (t = 2, 4, 6, 8, 10) and a run's late
    unlock does not release the newer lease (that would give a run every tick)."""

    @pyncette.task(
        interval=timedelta(seconds=2),
        lease_duration=timedelta(seconds=2),
        failure_mode=FailureMode.UNLOCK,
    )
    def slow_failing(context: Context) -> None:
        sleep(3)
        raise RuntimeError("late")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(slow_failing)

    assert starts(runs) == [2, 4, 6, 8, 10]
    assert sched(runs) == [2] * 5
    assert finishes(runs) == [5, 7, 9, None, None]
    assert outcomes(runs) == ["failed"] * 3 + ["running"] * 2
    assert runs[1].started_at < runs[0].finished_at  # type: ignore[operator]


@pytest.mark.parametrize(("catch_up", "second"), [(False, 6), (True, 4)])
def test_locked_while_executing(pyncette: Pyncette, catch_up: bool, second: float) -> None:
    """Pyncette: every 2 s, each run sleeps 5 s within its 60 s lease: nothing is sent while it
    runs; 2 runs in 10 s, the second (+4, overdue) when the first commits at t=7.

    Ours: the same two runs, at t=2 and t=7; the second's ``scheduled_at`` differs on purpose
    by default: +4 and +6 fell during the first run and coalesce into one run, the latest (+6).
    With ``catch_up=True``: +4, as in Pyncette."""

    @pyncette.task(interval=timedelta(seconds=2), catch_up=catch_up)
    def slow(context: Context) -> None:
        sleep(5)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(slow)

    assert sched(runs) == [2, second]
    assert starts(runs) == [2, 7]
    assert finishes(runs) == [7, None]
    assert most_open_at_once(runs) == 1


def test_lease_is_taken_over_if_expired(
    pyncette: Pyncette, lost_leases: list[tuple[str, str | None, Any]]
) -> None:
    """Pyncette: every 2 s, a 2 s lease, each run sleeps 10 s: the +2 occurrence is sent again
    each time the lease expires, 5 runs started (t = 2, 4, ..., 10), overlapping.

    Ours the same; and when they end, only the run holding the current lease may commit: the
    first one's commit at t=12 is refused (``lease_lost``) and the schedule does not move."""

    @pyncette.task(interval=timedelta(seconds=2), lease_duration=timedelta(seconds=2))
    def slow(context: Context) -> None:
        sleep(10)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(slow)
        assert starts(runs) == [2, 4, 6, 8, 10]
        assert sched(runs) == [2] * 5
        assert outcomes(runs) == ["running"] * 5
        assert most_open_at_once(runs) == 5

        sim.advance(timedelta(seconds=2))
        state = pyncette.get_task_state(slow)

    assert finishes(runs[:1]) == [12]
    assert lost_leases == [(slow.name, None, at(2))]
    assert state is not None
    assert state.scheduled_at == at(2)  # held by the run that took the lease at 12
    assert state.locked_until == at(14)


def test_not_locked_while_executing_if_best_effort_is_used(pyncette: Pyncette) -> None:
    """Pyncette: an ``AT_MOST_ONCE`` task is not locked while it runs: every 2 s, 5 s runs
    overlap, 5 started in 10 s, each its own occurrence."""

    @pyncette.task(interval=timedelta(seconds=2), execution_mode=ExecutionMode.AT_MOST_ONCE)
    def slow(context: Context) -> None:
        sleep(5)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(slow)

    assert sched(runs) == starts(runs) == [2, 4, 6, 8, 10]
    assert finishes(runs) == [7, 9, None, None, None]
    assert most_open_at_once(runs) == 3
