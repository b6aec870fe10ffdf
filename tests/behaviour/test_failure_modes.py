"""Theme 6, failure modes: Pyncette's ``test_failed_task_retried_on_every_tick_if_unlock``,
``test_failed_task_retried_after_lease_over_if_failure_mode_none``,
``test_failed_task_not_retried_if_commit_on_failure`` and
``test_failed_task_not_retried_if_best_effort``; and what a failing run's
``context.unschedule()`` / ``reschedule()`` does in each mode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_pyncette import Context, ExecutionMode, FailureMode, Pyncette
from celery_pyncette.testing import simulate
from tests.behaviour import T0, outcomes, sched, starts


class BoomError(Exception):
    """What the failing tasks raise."""


def test_failed_task_retried_on_every_tick_if_unlock(pyncette: Pyncette) -> None:
    """Pyncette: with ``FailureMode.UNLOCK`` a 2 s task that always fails retries its first
    occurrence (+2) on every 1 s tick: 9 executions at t = 2, 3, ..., 10."""

    @pyncette.task(interval=timedelta(seconds=2), failure_mode=FailureMode.UNLOCK)
    def failing(context: Context) -> None:
        raise BoomError

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(failing)

    assert starts(runs) == [float(t) for t in range(2, 11)]
    assert sched(runs) == [2] * 9
    assert outcomes(runs) == ["failed"] * 9
    assert all(isinstance(run.error, BoomError) for run in runs)


def test_failed_task_retried_after_lease_over_if_failure_mode_none(pyncette: Pyncette) -> None:
    """Pyncette: with ``FailureMode.NONE`` (the default) a failed run keeps its 5 s lease; the
    same occurrence (+2) runs again when it expires: t = 2, 7, 12, 17 in 20 s."""

    @pyncette.task(interval=timedelta(seconds=2), lease_duration=timedelta(seconds=5))
    def failing(context: Context) -> None:
        raise BoomError

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=20))
        runs = sim.executions(failing)

    assert starts(runs) == [2, 7, 12, 17]
    assert sched(runs) == [2, 2, 2, 2]
    assert outcomes(runs) == ["failed"] * 4


def test_failed_task_not_retried_if_commit_on_failure(pyncette: Pyncette) -> None:
    """Pyncette: with ``FailureMode.COMMIT`` a failure counts as done: one run per occurrence,
    5 in 10 s."""

    @pyncette.task(interval=timedelta(seconds=2), failure_mode=FailureMode.COMMIT)
    def failing(context: Context) -> None:
        raise BoomError

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(failing)
        state = pyncette.get_task_state(failing)

    assert sched(runs) == starts(runs) == [2, 4, 6, 8, 10]
    assert outcomes(runs) == ["failed"] * 5
    assert state is not None
    assert state.last_status == "failed"
    assert state.scheduled_at == T0 + timedelta(seconds=12)


def test_failed_task_not_retried_if_best_effort(pyncette: Pyncette) -> None:
    """Pyncette: an ``AT_MOST_ONCE`` task is never retried: 5 failed runs in 10 s, one per
    occurrence."""

    @pyncette.task(interval=timedelta(seconds=2), execution_mode=ExecutionMode.AT_MOST_ONCE)
    def failing(context: Context) -> None:
        raise BoomError

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(failing)

    assert sched(runs) == starts(runs) == [2, 4, 6, 8, 10]
    assert outcomes(runs) == ["failed"] * 5


@pytest.mark.parametrize("mode", list(FailureMode), ids=lambda mode: mode.name)
def test_a_failing_run_that_unscheduled_its_instance_is_not_run_again(
    pyncette: Pyncette, mode: FailureMode
) -> None:
    """Pyncette: ``context.unschedule()`` applies however the run ends (not a test of its own).

    Ours too, in every failure mode: the instance is removed, not retried (with ``UNLOCK`` it
    used to be unlocked and run again on the next tick)."""

    @pyncette.dynamic_task(failure_mode=mode, lease_duration=timedelta(seconds=5))
    def leaving(context: Context) -> None:
        context.unschedule()
        raise BoomError

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(leaving, "1", interval=timedelta(seconds=2))
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(leaving, "1")
        assert pyncette.get_task_state(leaving, "1") is None

    assert sched(runs) == [2]
    assert outcomes(runs) == ["failed"]


@pytest.mark.parametrize("mode", list(FailureMode), ids=lambda mode: mode.name)
def test_a_failing_run_that_rescheduled_its_instance_takes_the_new_timing(
    pyncette: Pyncette, mode: FailureMode
) -> None:
    """Pyncette: ``context.reschedule()`` applies however the run ends (not a test of its own).

    Ours too, in every failure mode: a run at +2 that moves its instance to every 5 s and then
    fails is followed by +7 and +12 (with ``UNLOCK`` it used to be unlocked and retried on the
    old timing)."""

    @pyncette.dynamic_task(failure_mode=mode, lease_duration=timedelta(seconds=5))
    def moving(context: Context) -> None:
        if context.args.get("moved") is None:
            context.reschedule(interval=timedelta(seconds=5), moved=True)
            raise BoomError

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(moving, "1", interval=timedelta(seconds=2))
        sim.advance(timedelta(seconds=12))
        runs = sim.executions(moving, "1")
        state = pyncette.get_task_state(moving, "1")

    assert sched(runs) == [2, 7, 12]
    assert outcomes(runs) == ["failed", "success", "success"]
    assert state is not None
    assert state.args == {"moved": True}
    assert state.interval == timedelta(seconds=5)
