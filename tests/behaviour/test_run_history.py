"""Run history and ``max_runs`` (issue #18, points 1 and 5), on the simulation kit."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, FailureMode, Run
from celery_pyncette.errors import StoreError
from celery_pyncette.testing import simulate, sleep
from tests.behaviour._pyncette_like import T0, after, pyncette_like


def test_a_dynamic_instance_with_max_runs_3_runs_3_times_then_is_gone() -> None:
    pyncette = pyncette_like()

    @pyncette.dynamic_task(name="bounded.dyn")
    def dyn(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        state = pyncette.schedule_task(dyn, "a", interval=timedelta(seconds=10), max_runs=3)
        assert (state.max_runs, state.runs_left) == (3, 3)
        sim.advance(timedelta(seconds=10))
        left = pyncette.get_task_state(dyn, "a")
        assert left is not None
        assert left.runs_left == 2
        sim.advance(timedelta(seconds=60))
        runs = sim.executions(dyn, "a")
        gone = pyncette.get_task_state(dyn, "a")

    assert [r.scheduled_at for r in runs] == [after(10), after(20), after(30)]
    assert gone is None


def test_a_static_task_with_max_runs_has_no_next_run_after_them() -> None:
    pyncette = pyncette_like()

    @pyncette.task(interval=timedelta(seconds=10), name="bounded.static", max_runs=2)
    def static(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=60))
        runs = sim.executions(static)
        state = pyncette.get_task_state(static)

    assert [r.scheduled_at for r in runs] == [after(10), after(20)]
    assert state is not None
    assert (state.max_runs, state.runs_left) == (2, 0)


def test_history_is_newest_first_with_success_failed_and_struck() -> None:
    pyncette = pyncette_like()
    calls: list[int] = []

    @pyncette.task(
        interval=timedelta(seconds=10), name="hist.mixed", failure_mode=FailureMode.COMMIT
    )
    def mixed(context: Context) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("x" * 2000)

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=20))
        pyncette.strike(mixed)
        sim.advance(timedelta(seconds=10))
        history = pyncette.history(mixed)
        newest = pyncette.history(mixed, limit=1)

    assert [r.status for r in history] == ["struck", "failed", "success"]
    assert [r.scheduled_at for r in history] == [after(30), after(20), after(10)]
    assert all(isinstance(r, Run) and r.worker == socket.gethostname() for r in history)
    struck, failed, success = history
    assert failed.error is not None
    assert failed.error.startswith("RuntimeError: xxx")
    assert len(failed.error) == 500
    assert success.error is None
    assert success.started_at is not None
    assert success.finished_at >= success.started_at >= success.scheduled_at
    assert newest == [struck]


def test_history_keeps_at_most_history_size_and_none_at_zero() -> None:
    kept = pyncette_like(history_size=2)
    off = pyncette_like(history_size=0)
    for pyncette in (kept, off):

        @pyncette.task(interval=timedelta(seconds=10), name="hist.size")
        def job(context: Context) -> None: ...

        with simulate(pyncette, start=T0) as sim:
            sim.advance(timedelta(seconds=50))
            assert len(sim.executions(job)) == 5
            kept_runs = pyncette.history("hist.size")
        if pyncette is kept:
            assert [r.scheduled_at for r in kept_runs] == [after(50), after(40)]
        else:
            assert kept_runs == []


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_max_runs_must_be_a_positive_int(bad: Any) -> None:
    pyncette = pyncette_like()

    with pytest.raises(ValueError, match="max_runs"):
        pyncette.task(interval=timedelta(seconds=10), name="bad.static", max_runs=bad)

    @pyncette.dynamic_task(name="bad.dyn", interval=timedelta(seconds=10))
    def dyn(context: Context) -> None: ...

    with pytest.raises(ValueError, match="max_runs"):
        pyncette.schedule_task(dyn, "a", max_runs=bad)
    with pytest.raises(ValueError, match="max_runs"):
        pyncette.schedule_tasks(dyn, {"a": {}}, max_runs=bad)
    assert pyncette.get_task_state(dyn, "a") is None


def test_ahistory_is_the_async_twin_of_history() -> None:
    pyncette = pyncette_like()

    @pyncette.dynamic_task(name="hist.async")
    def dyn(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(dyn, "a", interval=timedelta(seconds=10))
        sim.advance(timedelta(seconds=20))
        awaited = asyncio.run(pyncette.ahistory(dyn, "a"))
        direct = pyncette.history(dyn, "a")
        missing = asyncio.run(pyncette.ahistory(dyn, "nobody"))

    assert [r.scheduled_at for r in awaited] == [after(20), after(10)]
    assert awaited == direct
    assert missing == []


def test_an_unlocked_failure_is_in_the_history_and_does_not_count_against_max_runs() -> None:
    pyncette = pyncette_like()
    calls: list[int] = []

    @pyncette.task(
        interval=timedelta(seconds=10),
        name="hist.unlock",
        failure_mode=FailureMode.UNLOCK,
        max_runs=2,
    )
    def flaky(context: Context) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first try")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=40))
        history = pyncette.history(flaky)
        state = pyncette.get_task_state(flaky)

    assert [r.status for r in history] == ["success", "success", "failed"]
    assert history[-1].error == "ValueError: first try"
    assert history[-1].scheduled_at == history[-2].scheduled_at == after(10)  # run again
    assert len(calls) == 3
    assert state is not None
    assert state.runs_left == 0


def test_a_failure_under_failure_mode_none_is_in_the_history_and_keeps_its_lease() -> None:
    pyncette = pyncette_like()
    calls: list[int] = []

    @pyncette.task(
        interval=timedelta(seconds=10),
        name="hist.none",
        lease_duration=timedelta(seconds=5),
        failure_mode=FailureMode.NONE,
    )
    def flaky(context: Context) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first try")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=12))
        kept = pyncette.history(flaky)
        state = pyncette.get_task_state(flaky)
        sim.advance(timedelta(seconds=8))
        runs = sim.executions(flaky)
        history = pyncette.history(flaky)

    (failed,) = kept
    assert (failed.status, failed.error, failed.scheduled_at) == (
        "failed",
        "ValueError: first try",
        after(10),
    )
    assert state is not None
    assert state.locked_until == after(15)  # the lease stays: sent again once it is over
    assert [r.scheduled_at for r in runs] == [after(10), after(10), after(20)]
    assert [r.status for r in history] == ["success", "success", "failed"]
    assert [r.scheduled_at for r in history] == [after(20), after(10), after(10)]


def test_a_run_that_outlives_its_lease_ends_with_a_lease_lost_entry() -> None:
    pyncette = pyncette_like()
    calls: list[int] = []

    @pyncette.task(
        interval=timedelta(seconds=60), name="hist.lost", lease_duration=timedelta(seconds=2)
    )
    def slow_once(context: Context) -> None:
        calls.append(1)
        if len(calls) == 1:
            sleep(3)  # past its lease: the occurrence is sent again meanwhile

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=65))
        runs = sim.executions(slow_once)
        history = pyncette.history(slow_once)
        log_count = pyncette.get_task_state(slow_once)

    assert [r.scheduled_at for r in runs] == [after(60), after(60)]
    assert [r.status for r in history] == ["lease_lost", "success"]
    assert [r.scheduled_at for r in history] == [after(60), after(60)]
    lost = history[0]
    assert lost.started_at == after(60)
    assert lost.finished_at == after(63)
    assert log_count is not None
    assert log_count.last_status == "success"


def test_no_history_size_means_no_entry_for_a_kept_failure() -> None:
    pyncette = pyncette_like(history_size=0)

    @pyncette.task(interval=timedelta(seconds=10), name="hist.none.off")
    def failing(context: Context) -> None:
        raise ValueError("no")

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=12))
        assert len(sim.executions(failing)) == 1
        assert pyncette.history(failing) == []


def test_a_store_failure_recording_a_kept_failure_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pyncette = pyncette_like()

    @pyncette.task(
        interval=timedelta(seconds=10), name="hist.none.down", lease_duration=timedelta(seconds=5)
    )
    def failing(context: Context) -> None:
        raise ValueError("no")

    def down(*args: Any) -> bool:
        raise StoreError("store down")

    with simulate(pyncette, start=T0) as sim:
        monkeypatch.setattr(sim.store, "record_run", down)
        sim.advance(timedelta(seconds=12))
        runs = sim.executions(failing)
        state = pyncette.get_task_state(failing)

    assert [r.outcome for r in runs] == ["failed"]
    assert isinstance(runs[0].error, ValueError)
    assert state is not None
    assert state.locked_until == after(15)
    assert "could not add the failed run of" in caplog.text
