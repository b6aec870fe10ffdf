"""Theme 1, static schedules: Pyncette's ``test_successful_task_interval``,
``test_successful_task_cronspec``, ``test_context_scheduled_at``, ``test_extra_args`` and
``test_multi_task``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from celery_pyncette import Context, Pyncette
from celery_pyncette.testing import simulate
from tests.behaviour import T0, at, outcomes, sched, starts
from tests.behaviour.conftest import MakePyncette


def test_successful_task_interval(pyncette: Pyncette) -> None:
    """Pyncette: an interval task of 2 s runs 5 times in 10 s, at +2, +4, +6, +8 and +10."""

    @pyncette.task(interval=timedelta(seconds=2))
    def every_2s(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(every_2s)

    assert sched(runs) == [2, 4, 6, 8, 10]
    assert starts(runs) == [2, 4, 6, 8, 10]
    assert outcomes(runs) == ["success"] * 5


def test_successful_task_cronspec(make_pyncette: MakePyncette) -> None:
    """Pyncette: a ``* * * * *`` task runs once a minute, 10 times in 10 minutes, also when the
    app polls only every 30 s."""
    pyncette = make_pyncette(poll_interval=30)

    @pyncette.task(schedule="* * * * *")
    def minutely(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(minutes=10))
        runs = sim.executions(minutely)

    assert sched(runs) == [60 * m for m in range(1, 11)]
    # Our beat wakes at a known due time, so the 30 s poll interval delays nothing.
    assert starts(runs) == sched(runs)


def test_context_scheduled_at(pyncette: Pyncette) -> None:
    """Pyncette: ``context.scheduled_at`` is the nominal time of the occurrence: 00:00:02, :04,
    :06, :08, :10 for a 2 s interval from midnight."""
    seen: list[datetime | None] = []

    @pyncette.task(interval=timedelta(seconds=2))
    def every_2s(context: Context) -> None:
        seen.append(context.scheduled_at)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(every_2s)

    # Ours is aware UTC always; Pyncette's is in the task's zone (the same instant; UTC here).
    assert seen == [at(s) for s in (2, 4, 6, 8, 10)]
    assert seen == [run.scheduled_at for run in runs]
    assert all(moment is not None and moment.utcoffset() == timedelta(0) for moment in seen)


def test_extra_args(pyncette: Pyncette) -> None:
    """Pyncette: extra decorator keywords (``foo="bar", quux=123``) reach ``context.args``, the
    int still an int."""
    seen: list[dict[str, Any]] = []

    @pyncette.task(interval=timedelta(seconds=2), foo="bar", quux=123)
    def with_args(context: Context) -> None:
        seen.append(dict(context.args))

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))

    assert seen == [{"foo": "bar", "quux": 123}] * 5
    assert all(type(args["quux"]) is int for args in seen)


def test_multi_task(pyncette: Pyncette) -> None:
    """Pyncette: two stacked decorators with their own names are two schedules of one function:
    every 1 s and every 2 s give 10 + 5 = 15 runs in 10 s."""
    calls: list[str] = []

    @pyncette.task(interval=timedelta(seconds=1), name="task1")
    @pyncette.task(interval=timedelta(seconds=2), name="task2")
    def both(context: Context) -> None:
        calls.append(context.task.name)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        task1, task2 = sim.executions("task1"), sim.executions("task2")

    assert sched(task1) == [float(s) for s in range(1, 11)]
    assert sched(task2) == [2, 4, 6, 8, 10]
    assert sorted(calls) == sorted(["task1"] * 10 + ["task2"] * 5)
