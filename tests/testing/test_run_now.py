"""``run_now``: one extra occurrence now, sent by beat on the normal claim path, the schedule kept.

Run on the testing kit: the real beat and worker path under a simulated clock.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette import (
    Context,
    ExecutionMode,
    FailureMode,
    Pyncette,
    TaskLockedError,
)
from celery_pyncette._partitions import repartition
from celery_pyncette._records import extra_target, is_extra_instance
from celery_pyncette.testing import simulate, sleep

#: A Monday, 12:00 UTC.
START = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)


def stored_names(pyncette: Pyncette, task: str, partitions: int = 1) -> list[str]:
    return [
        r.key.instance
        for p in range(partitions)
        for r in pyncette.store.list_instances(task, p, 1000)
    ]


def test_run_now_runs_once_at_now_and_the_next_run_does_not_move(pyncette: Pyncette) -> None:
    seen: list[tuple[str | None, datetime | None, dict[str, object]]] = []

    @pyncette.dynamic_task()
    def remind(context: Context) -> None:
        seen.append((context.instance, context.scheduled_at, dict(context.args)))

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "bill", schedule="0 9 * * *", args={"to": "bill@x"})
        before = pyncette.get_task_state(remind, "bill")
        sim.advance(timedelta(minutes=5))
        sent_at = pyncette.run_now(remind, "bill")
        assert sent_at == sim.now
        # Pending: the listing shows the instance alone, and its state is unchanged.
        page = pyncette.list_task_states(remind)
        assert [s.instance for s in page.tasks] == ["bill"]
        sim.advance(timedelta(seconds=1))
        after = pyncette.get_task_state(remind, "bill")
        runs = sim.executions(remind)
        stored = stored_names(pyncette, remind.name)
        sim.advance(timedelta(days=1))
        later = sim.executions(remind)

    assert [(r.instance, r.scheduled_at, r.outcome) for r in runs] == [("bill", sent_at, "success")]
    assert seen[0] == ("bill", sent_at, {"to": "bill@x"})
    assert before is not None
    assert after is not None
    assert (
        after.scheduled_at == before.scheduled_at == datetime(2026, 11, 3, 9, tzinfo=timezone.utc)
    )
    assert after.last_run_at is None  # the instance's own record was not settled
    assert stored == ["bill"]  # the extra occurrence is gone once settled
    assert [r.scheduled_at for r in later] == [
        sent_at,
        datetime(2026, 11, 3, 9, tzinfo=timezone.utc),
    ]


def test_a_running_instance_refuses_run_now_unless_forced(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(lease_duration=timedelta(minutes=10))
    def slow(context: Context) -> None:
        sleep(60)

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(slow, "a", interval=timedelta(hours=1))
        sim.advance(timedelta(hours=1, seconds=1))  # its own run is under way
        with pytest.raises(TaskLockedError, match="running"):
            pyncette.run_now(slow, "a")
        assert stored_names(pyncette, slow.name) == ["a"]  # nothing written
        forced = pyncette.run_now(slow, "a", force=True)
        sim.advance(timedelta(seconds=1))
        # Now the extra run is the one running (the instance's own finished meanwhile, too).
        sim.advance(timedelta(seconds=58))
        with pytest.raises(TaskLockedError, match="an extra run"):
            pyncette.run_now(slow, "a")
        sim.advance(timedelta(minutes=2))
        runs = sim.executions(slow, "a")

    assert [(r.scheduled_at, r.outcome) for r in runs] == [
        (START + timedelta(hours=1), "success"),
        (forced, "success"),
    ]
    finished = runs[0].finished_at
    assert finished is not None
    assert runs[1].started_at < finished  # the forced run overlapped the first


def test_run_now_of_a_static_task(pyncette: Pyncette) -> None:
    instances: list[str | None] = []

    @pyncette.task(schedule="0 0 * * *")
    def nightly(context: Context) -> None:
        instances.append(context.instance)

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(seconds=1))  # beat writes the static record
        before = pyncette.get_task_state(nightly)
        sent_at = pyncette.run_now(nightly)
        sim.advance(timedelta(seconds=1))
        after = pyncette.get_task_state(nightly)
        runs = sim.executions(nightly)

    assert [(r.instance, r.scheduled_at) for r in runs] == [(None, sent_at)]
    assert instances == [None]
    assert before is not None
    assert after is not None
    assert after.scheduled_at == before.scheduled_at == datetime(2026, 11, 3, tzinfo=timezone.utc)


def test_run_now_of_a_partitioned_instance_lands_in_its_partition(pyncette: Pyncette) -> None:
    @pyncette.partitioned_task(partition_count=4)
    def spread(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        names = [f"u{i}" for i in range(8)]
        for name in names:
            pyncette.schedule_task(spread, name, interval=timedelta(days=1))
        state = pyncette.get_task_state(spread, "u5")
        assert state is not None
        pyncette.run_now(spread, "u5")
        pending = [
            r.key
            for r in pyncette.store.list_instances(spread.name, state.partition, 100)
            if is_extra_instance(r.key.instance)
        ]
        listed = sorted(s.instance or "" for s in pyncette.list_task_states(spread).tasks)
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(spread)

    assert len(pending) == 1
    assert listed == names
    assert [r.instance for r in runs] == ["u5"]


def test_a_failed_extra_run_follows_the_failure_mode(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(failure_mode=FailureMode.UNLOCK)
    def flaky(context: Context) -> None:
        raise RuntimeError("boom")

    @pyncette.dynamic_task(failure_mode=FailureMode.COMMIT)
    def committed(context: Context) -> None:
        raise RuntimeError("boom")

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(flaky, "f", interval=timedelta(days=1))
        pyncette.schedule_task(committed, "c", interval=timedelta(days=1))
        unlocked_at = pyncette.run_now(flaky, "f")
        committed_at = pyncette.run_now(committed, "c")
        sim.advance(timedelta(seconds=2))
        retried = sim.executions(flaky)
        once = sim.executions(committed)
        left = stored_names(pyncette, committed.name)

    # UNLOCK: the same extra occurrence is due again on every tick; COMMIT: settled once.
    assert len(retried) >= 3
    assert {r.scheduled_at for r in retried} == {unlocked_at}
    assert [(r.scheduled_at, r.outcome) for r in once] == [(committed_at, "failed")]
    assert left == ["c"]


def test_an_at_most_once_extra_run_is_committed_before_it_is_sent(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(execution_mode=ExecutionMode.AT_MOST_ONCE)
    def fragile(context: Context) -> None:
        raise RuntimeError("boom")

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(fragile, "x", interval=timedelta(days=1))
        pyncette.run_now(fragile, "x")
        sim.advance(timedelta(minutes=5))
        runs = sim.executions(fragile)
        left = stored_names(pyncette, fragile.name)

    assert [r.outcome for r in runs] == ["failed"]
    assert left == ["x"]


def test_unschedule_in_an_extra_run_removes_the_instance(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def last(context: Context) -> None:
        context.unschedule()

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(last, "x", interval=timedelta(days=1))
        pyncette.run_now(last, "x")
        sim.advance(timedelta(seconds=1))
        left = stored_names(pyncette, last.name)

    assert left == []


def test_run_now_refuses_what_cannot_run_and_writes_nothing(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def dyn(context: Context) -> None: ...

    @pyncette.task(interval=timedelta(hours=1))
    def static(context: Context) -> None: ...

    @pyncette.task(interval=timedelta(hours=1), enabled=False)
    def off(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        pyncette.schedule_task(dyn, "a", interval=timedelta(hours=1))
        with pytest.raises(ValueError, match="has no instance 'b'"):
            pyncette.run_now(dyn, "b")
        with pytest.raises(ValueError, match="name the instance"):
            pyncette.run_now(dyn)
        with pytest.raises(ValueError, match="static task"):
            pyncette.run_now(static, "a")
        with pytest.raises(ValueError, match="disabled"):
            pyncette.run_now(off)
        with pytest.raises(ValueError, match="reserved"):
            pyncette.run_now(dyn, "__pyncette_extra__:x")
        assert stored_names(pyncette, dyn.name) == ["a"]
        assert stored_names(pyncette, static.name) == []


def test_user_instance_names_cannot_take_the_reserved_prefix(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def dyn(context: Context) -> None: ...

    reserved = pytest.raises(ValueError, match="reserved: names starting with '__pyncette'")
    with simulate(pyncette, start=START), reserved:
        pyncette.schedule_task(dyn, "__pyncette_extra__:abc", interval=timedelta(hours=1))


def test_arun_now_is_the_async_twin(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def dyn(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(dyn, "a", interval=timedelta(hours=1))
        sent_at = asyncio.run(pyncette.arun_now(dyn, "a"))
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(dyn)

    assert [r.scheduled_at for r in runs] == [sent_at]


def test_removing_an_instance_removes_its_pending_extra_runs(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def report(context: Context) -> None:
        if context.args.get("last"):
            context.unschedule()

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(report, "gone", schedule="0 9 * * *")
        pyncette.schedule_task(report, "kept", schedule="0 9 * * *")
        pyncette.run_now(report, "gone")
        pyncette.backfill(report, "gone", start=START - timedelta(days=3), end=START)
        pyncette.run_now(report, "kept")
        assert pyncette.unschedule_task(report, "gone")
        left = list(pyncette.store.list_instances(report.name, 0, 100))
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(report)

    assert [extra_target(r) for r in left if is_extra_instance(r.key.instance)] == ["kept"]
    assert [r.instance for r in runs] == ["kept"]


def test_context_unschedule_in_a_scheduled_run_removes_the_pending_extra_runs(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(lease_duration=timedelta(minutes=5))
    def report(context: Context) -> None:
        sleep(60)
        context.unschedule()

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(report, "x", interval=timedelta(minutes=1))
        sim.advance(timedelta(minutes=1, seconds=10))  # its scheduled run is under way
        written = pyncette.backfill(report, "x", start=START - timedelta(minutes=3), end=START)
        sim.advance(timedelta(minutes=1), beat=False)  # it ends, unscheduling, before any is sent
        pending = stored_names(pyncette, report.name)
        sim.advance(timedelta(minutes=5))
        runs = sim.executions(report)

    assert len(written) == 3
    assert pending == []
    assert [(r.scheduled_at, r.outcome) for r in runs] == [
        (START + timedelta(minutes=1), "success")
    ]


def test_repartition_moves_extra_runs_with_their_instance(pyncette: Pyncette) -> None:
    @pyncette.partitioned_task(partition_count=2)
    def spread(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        for i in range(12):
            pyncette.schedule_task(spread, f"u{i}", interval=timedelta(days=1))
        for i in range(12):
            pyncette.run_now(spread, f"u{i}")
        repartition(pyncette.store, pyncette.definition(spread), 8, sim.now)
        placed = {
            (p, extra_target(r) if is_extra_instance(r.key.instance) else r.key.instance)
            for p in range(8)
            for r in pyncette.store.list_instances(spread.name, p, 100)
        }

    assert len(placed) == 12  # each extra sits in its instance's partition
    assert {p for p, _ in placed} != {0, 1}
