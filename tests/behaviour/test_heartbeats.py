"""Theme 8, heartbeats: Pyncette's ``test_lease_is_not_lost_if_heartbeating``,
``test_heartbeating_noop_on_best_effort_tasks``, ``test_heartbeat_fails_if_lease_lost``,
``test_automatic_heartbeating_lease_expired``,
``test_automatic_heartbeating_cancel_on_lease_expired``,
``test_heartbeating_after_task_deleted``, ``test_continues_heartbeating_after_exception``,
``test_stops_heartbeating_if_lease_lost`` and ``test_heartbeat_invalid_configuration``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from celery_pyncette import (
    Context,
    ExecutionMode,
    LeaseLostError,
    Pyncette,
    StoreError,
    with_heartbeat,
)
from celery_pyncette.testing import Simulation, simulate, sleep
from tests.behaviour import T0, at, finishes, outcomes, sched, starts

LostLeases = list[tuple[str, str | None, Any]]


def test_lease_is_not_lost_if_heartbeating(pyncette: Pyncette) -> None:
    """Pyncette: every 3 s, a 2 s lease; a run of 6 x (sleep 1 s, heartbeat) keeps its lease for
    6 s: no take-over, 2 runs in 10 s (+3 from t=3 to 9, then the next one at t=9).

    Ours the same two runs; the second's ``scheduled_at`` differs on purpose: +6 and +9 fell
    during the first run and coalesce into one, +9 (Pyncette, and our ``catch_up=True``: +6)."""
    beats: list[datetime] = []

    @pyncette.task(interval=timedelta(seconds=3), lease_duration=timedelta(seconds=2))
    def careful(context: Context) -> None:
        for _ in range(6):
            sleep(1)
            context.heartbeat()
            beats.append(pyncette.now())

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(careful)

    assert sched(runs) == [3, 9]
    assert starts(runs) == [3, 9]
    assert finishes(runs)[0] == 9
    assert outcomes(runs)[0] == "success"
    assert beats[:6] == [at(s) for s in range(4, 10)]


def test_heartbeating_noop_on_best_effort_tasks(pyncette: Pyncette) -> None:
    """Pyncette: a heartbeat in an ``AT_MOST_ONCE`` run neither fails nor changes its (absent)
    lease.

    Ours the same, seen through ``context.locked_until`` (Pyncette compares its internal lease
    object, which has no public counterpart)."""
    seen: list[datetime | None] = []

    @pyncette.task(interval=timedelta(seconds=6), execution_mode=ExecutionMode.AT_MOST_ONCE)
    def best_effort(context: Context) -> None:
        seen.append(context.locked_until)
        context.heartbeat()
        seen.append(context.locked_until)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(best_effort)

    assert sched(runs) == [6]
    assert outcomes(runs) == ["success"]
    assert seen == [None, None]


def test_heartbeat_fails_if_lease_lost(pyncette: Pyncette) -> None:
    """Pyncette: every 2 s, a 1 s lease, each run sleeps 5 s then heartbeats: the +2 occurrence
    is re-claimed on every tick (t = 2, 3, ..., 10), so 8 heartbeats find a newer lease and
    raise; the last (run from t=10, heartbeat at 15, after the scheduler stopped: nobody
    re-claimed its expired lease) succeeds.

    Ours the same; the scheduler stopping is an outage (``advance(beat=False)``) while the runs
    finish."""
    heartbeats: list[str] = []

    @pyncette.task(interval=timedelta(seconds=2), lease_duration=timedelta(seconds=1))
    def slow(context: Context) -> None:
        sleep(5)
        try:
            context.heartbeat()
        except LeaseLostError:
            heartbeats.append("lost")
            raise
        heartbeats.append("extended")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        sim.advance(timedelta(seconds=5), beat=False)
        runs = sim.executions(slow)

    assert starts(runs) == [float(t) for t in range(2, 11)]
    assert sched(runs) == [2] * 9
    assert heartbeats == ["lost"] * 8 + ["extended"]
    assert outcomes(runs) == ["failed"] * 8 + ["success"]
    assert all(isinstance(run.error, LeaseLostError) for run in runs[:8])


@contextlib.contextmanager
def _lease_lost_mid_run(pyncette: Pyncette, task: Any) -> Iterator[Simulation]:
    """Simulate instance "1" of ``task`` (every 10 s, a 1 s lease): its run starts at +10, and
    at +11 the instance is replaced with ``force=True``, so the running execution's lease is
    gone (Pyncette swaps in a stale lease object, which has no public counterpart here)."""
    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(task, "1", interval=timedelta(seconds=10))
        sim.advance(timedelta(seconds=11))
        pyncette.schedule_task(task, "1", interval=timedelta(seconds=10), force=True)
        yield sim


def test_automatic_heartbeating_lease_expired(pyncette: Pyncette, lost_leases: LostLeases) -> None:
    """Pyncette: with ``@with_heartbeat(cancel_on_lease_lost=False)`` a run whose lease is lost
    goes on to its end (4 started, 4 finished).

    Ours the same: the run started at +10 loses its lease at +11, its next heartbeat (+11.5)
    finds it lost (``context.lease_lost``, one ``lease_lost`` signal, no more heartbeats), it
    ends at +16, and its commit is refused (a second ``lease_lost``): the replaced instance keeps
    its next run, +21."""
    ends: list[bool] = []

    @pyncette.dynamic_task(lease_duration=timedelta(seconds=1))
    @with_heartbeat(cancel_on_lease_lost=False)
    def long(context: Context) -> None:
        sleep(6)
        ends.append(context.lease_lost)

    with _lease_lost_mid_run(pyncette, long) as sim:
        sim.advance(timedelta(seconds=6))
        (run,) = sim.executions(long, "1")
        state = pyncette.get_task_state(long, "1")
        sim.advance(timedelta(seconds=5))
        after = sim.executions(long, "1")

    assert (sched([run]), starts([run]), finishes([run])) == ([10], [10], [16])
    assert run.outcome == "success"
    assert ends == [True]
    assert lost_leases == [(long.name, "1", at(10))] * 2  # the heartbeat, then the commit
    assert state is not None
    assert (state.scheduled_at, state.locked_until) == (at(21), None)
    assert sched(after) == [10, 21]


def test_automatic_heartbeating_cancel_on_lease_expired(
    pyncette: Pyncette, lost_leases: LostLeases
) -> None:
    """Pyncette: with ``cancel_on_lease_lost=True`` a run whose lease is lost is cancelled
    (4 started, 1 finished).

    Ours the same for ``async def`` functions (a thread cannot be cancelled): the heartbeat at
    +11.5 finds the lease lost, the function is cancelled at its next ``await`` and never
    reaches its end; the run fails with ``LeaseLostError``."""
    ends: list[bool] = []

    @pyncette.dynamic_task(lease_duration=timedelta(seconds=1))
    @with_heartbeat(cancel_on_lease_lost=True)
    async def long(context: Context) -> None:
        for _ in range(12):
            sleep(0.5)
            await asyncio.sleep(0)
        ends.append(context.lease_lost)

    with _lease_lost_mid_run(pyncette, long) as sim:
        sim.advance(timedelta(seconds=6))
        (run,) = sim.executions(long, "1")
        state = pyncette.get_task_state(long, "1")

    assert (sched([run]), starts([run]), finishes([run])) == ([10], [10], [11.5])
    assert run.outcome == "failed"
    assert isinstance(run.error, LeaseLostError)
    assert isinstance(run.error.__cause__, asyncio.CancelledError)
    assert ends == []
    assert lost_leases == [(long.name, "1", at(10))]
    assert state is not None
    assert state.scheduled_at == at(21)


def test_heartbeating_after_task_deleted(pyncette: Pyncette) -> None:
    """Pyncette: a heartbeat after the run's own instance was unscheduled raises: 1 run, 1
    heartbeat failure.

    Ours the same with ``pyncette.unschedule_task`` (immediate); ``context.unschedule()`` is
    deferred to the end of the run, so a heartbeat after it still succeeds."""
    heartbeats: list[str] = []

    @pyncette.dynamic_task()
    def leaving(context: Context) -> None:
        assert context.instance is not None
        pyncette.unschedule_task(leaving, context.instance)
        with pytest.raises(LeaseLostError):
            context.heartbeat()
        heartbeats.append("lost")

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(leaving, "1", interval=timedelta(seconds=1))
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(leaving, "1")
        assert pyncette.get_task_state(leaving, "1") is None

    assert sched(runs) == [1]
    assert outcomes(runs) == ["success"]
    assert heartbeats == ["lost"]


def _failing_heartbeats(
    pyncette: Pyncette, error: Exception
) -> tuple[list[float], list[str], bool | None]:
    """A run (+60, a 2 s lease, ``@with_heartbeat()``, sleeps 10 s) whose every heartbeat raises
    ``error``; the scheduler is down meanwhile, so only that run is open. Returns when each
    heartbeat was tried (seconds after T0), the run's outcomes and its ``context.lease_lost``."""
    tried: list[float] = []
    lost: list[bool] = []

    @pyncette.task(interval=timedelta(seconds=60), lease_duration=timedelta(seconds=2))
    @with_heartbeat()
    def long(context: Context) -> None:
        sleep(10)
        lost.append(context.lease_lost)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=60))  # the run starts, taking its lease

        def extend_lease(*args: Any, **kwargs: Any) -> None:
            tried.append((sim.now - T0).total_seconds())
            raise error

        sim.store.extend_lease = extend_lease  # type: ignore[method-assign]
        sim.advance(timedelta(seconds=10), beat=False)
        runs = sim.executions(long)

    return tried, outcomes(runs), lost[0] if lost else None


def test_continues_heartbeating_after_store_error(pyncette: Pyncette) -> None:
    """Pyncette (``test_continues_heartbeating_after_exception``): a background heartbeat that
    raises goes on beating every 0.5 x lease (2 s): 9 attempts in a 10 s run.

    Ours the same for a ``StoreError`` (the store unreachable): a beat every second. 10 here,
    not 9: at +70 the simulation runs the heartbeat before the run's wake-up at the same
    instant, where Pyncette's run ends first."""
    tried, runs, lost = _failing_heartbeats(pyncette, StoreError("store away"))

    assert tried == [float(s) for s in range(61, 71)]
    assert runs == ["success"]
    assert lost is False


def test_stops_heartbeating_after_another_exception(pyncette: Pyncette) -> None:
    """Pyncette (``test_continues_heartbeating_after_exception``): any exception is retried.

    Ours differs on purpose: only a ``StoreError`` is retried; anything else (a bug) is logged
    and ends the heartbeat after the first attempt, and the run goes on."""
    tried, runs, lost = _failing_heartbeats(pyncette, RuntimeError("a bug"))

    assert tried == [61]
    assert runs == ["success"]
    assert lost is False


def test_stops_heartbeating_if_lease_lost(pyncette: Pyncette, lost_leases: LostLeases) -> None:
    """Pyncette: a background heartbeat stops at the first lost lease: 1 attempt.

    Ours the same; ``context.lease_lost`` is set and one ``lease_lost`` signal sent."""
    tried, runs, lost = _failing_heartbeats(pyncette, LeaseLostError("taken over"))

    assert tried == [61]
    assert runs == ["success"]
    assert lost is True
    ((task, instance, scheduled_at),) = lost_leases
    assert (task.rsplit(".", 1)[-1], instance, scheduled_at) == ("long", None, at(60))


@pytest.mark.parametrize("ratio", [-1, 2])
def test_heartbeat_invalid_configuration(ratio: float) -> None:
    """Pyncette: ``with_heartbeat(lease_remaining_ratio=-1)`` and ``=2`` are refused with
    ``ValueError``. Ours the same."""
    with pytest.raises(ValueError, match="lease_remaining_ratio"):
        with_heartbeat(lease_remaining_ratio=ratio)
