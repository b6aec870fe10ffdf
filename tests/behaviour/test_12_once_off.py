"""Pyncette 1.1's once-off (``execute_at``) behaviours (catalogue theme 12), on the kit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_pyncette import Context, ExecutionMode, FailureMode
from celery_pyncette.testing import simulate
from tests.behaviour._pyncette_like import T0, after, pyncette_like, scheduled, started


@pytest.mark.parametrize("mode", [ExecutionMode.AT_LEAST_ONCE, ExecutionMode.AT_MOST_ONCE])
def test_once_off_instances_run_once_each_at_their_time_and_are_removed(
    mode: ExecutionMode,
) -> None:
    """Pyncette (test_execute_at, test_execute_at_at_most_once): +1, +2, +3 s: 3 executions."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task(execution_mode=mode)
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        for n in (1, 2, 3):
            pyncette.schedule_task(hello, str(n), execute_at=after(n))
        sim.advance(timedelta(seconds=10))
        runs = {n: scheduled(sim.executions(hello, str(n))) for n in (1, 2, 3)}
        states = [pyncette.get_task_state(hello, str(n)) for n in (1, 2, 3)]

    assert runs == {1: [1.0], 2: [2.0], 3: [3.0]}
    assert states == [None, None, None]


def test_a_failing_once_off_with_unlock_is_retried_every_tick_and_stays() -> None:
    """Pyncette (test_execute_at_retry): at +1, +2, +3 s, always failing, UNLOCK, 5 s: 5, 4 and
    3 executions (one per tick from its time to the end). Ours the same: unlocked, it is sent
    again on the next tick (poll interval 1 s), each with its own scheduled_at."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task(failure_mode=FailureMode.UNLOCK)
    def hello(context: Context) -> None:
        raise RuntimeError("always")

    with simulate(pyncette, start=T0) as sim:
        for n in (1, 2, 3):
            pyncette.schedule_task(hello, f"task{n}", execute_at=after(n))
        sim.advance(timedelta(seconds=5))
        runs = {n: sim.executions(hello, f"task{n}") for n in (1, 2, 3)}
        states = [pyncette.get_task_state(hello, f"task{n}") for n in (1, 2, 3)]

    assert {n: started(r) for n, r in runs.items()} == {
        1: [1.0, 2.0, 3.0, 4.0, 5.0],
        2: [2.0, 3.0, 4.0, 5.0],
        3: [3.0, 4.0, 5.0],
    }
    assert {n: set(scheduled(r)) for n, r in runs.items()} == {1: {1.0}, 2: {2.0}, 3: {3.0}}
    assert all(r.outcome == "failed" for rs in runs.values() for r in rs)
    assert all(state is not None for state in states)
