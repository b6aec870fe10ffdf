"""``celery_pyncette.testing.simulate``: the real beat and worker path under a simulated clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, FailureMode, Pyncette, with_heartbeat
from celery_pyncette.testing import simulate, sleep

START = datetime(2026, 10, 31, 12, tzinfo=timezone.utc)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_daily_new_york_reminder_runs_once_per_local_day_across_fall_back(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task()
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "u1", schedule="30 1 * * *", timezone="America/New_York")
        sim.advance(timedelta(days=3))
        runs = sim.executions(remind, "u1")

    # 01:30 EDT on Nov 1 (fall-back day: 01:30 happens twice, it runs once), then 01:30 EST.
    assert [r.scheduled_at for r in runs] == [
        at("2026-11-01T05:30:00+00:00"),
        at("2026-11-02T06:30:00+00:00"),
        at("2026-11-03T06:30:00+00:00"),
    ]
    assert [r.outcome for r in runs] == ["success"] * 3
    assert all(r.started_at == r.scheduled_at == r.finished_at for r in runs)


def test_time_stands_still_until_advance_and_a_zero_advance_runs_what_is_due(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task()
    def once(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(once, "now", execute_at=sim.now)
        assert sim.executions() == []
        assert sim.now == START
        sim.advance(timedelta(0))
        (run,) = sim.executions(once)
        assert (run.instance, run.scheduled_at, run.started_at) == ("now", START, START)
        assert pyncette.get_task_state(once, "now") is None  # once-off: removed after its run
        sim.advance(timedelta(hours=5))
        assert sim.now == START + timedelta(hours=5)
        assert len(sim.executions()) == 1


def test_an_execution_that_outlives_its_lease_is_sent_again_while_it_runs(
    pyncette: Pyncette,
) -> None:
    @pyncette.task(interval=timedelta(hours=1), lease_duration=timedelta(seconds=30))
    def slow(context: Context) -> None:
        if context.args.get("attempt") is None:
            sleep(45)

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1, seconds=40))
        first, second = sim.executions(slow)[:2]

    due = START + timedelta(hours=1)
    assert first.scheduled_at == second.scheduled_at == due
    assert first.started_at == due
    assert second.started_at == due + timedelta(seconds=30)  # the lease expired mid-run
    assert first.outcome == "running"  # still asleep when the simulation stopped
    assert second.outcome == "running"


def test_with_heartbeat_keeps_the_lease_of_a_long_execution(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(hours=1), lease_duration=timedelta(seconds=30))
    @with_heartbeat()
    def long(context: Context) -> None:
        sleep(300)

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1, minutes=10))
        runs = sim.executions(long)

        state = pyncette.get_task_state(long)

    (run,) = runs
    assert run.outcome == "success"
    assert run.finished_at == run.started_at + timedelta(minutes=5)
    assert state is not None
    assert state.scheduled_at == START + timedelta(hours=2)


def test_a_cooperative_heartbeat_between_sleeps_keeps_the_lease(pyncette: Pyncette) -> None:
    beats: list[datetime] = []

    @pyncette.task(interval=timedelta(hours=1), lease_duration=timedelta(seconds=30))
    def careful(context: Context) -> None:
        for _ in range(6):
            sleep(20)
            context.heartbeat()
            beats.append(pyncette.now())

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1, minutes=5))
        (run,) = sim.executions(careful)
        state = pyncette.get_task_state(careful)

    assert run.outcome == "success"
    assert run.finished_at == run.started_at + timedelta(minutes=2)
    assert beats == [run.started_at + timedelta(seconds=20 * i) for i in range(1, 7)]
    assert state is not None
    assert state.scheduled_at == START + timedelta(hours=2)


def test_without_a_heartbeat_the_same_run_is_sent_again(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(hours=1), lease_duration=timedelta(seconds=30))
    def careless(context: Context) -> None:
        sleep(120)

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1, minutes=5))
        runs = sim.executions(careless)

    due = START + timedelta(hours=1)
    assert [r.started_at - due for r in runs[:4]] == [timedelta(seconds=30 * i) for i in range(4)]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # the lease is kept: the same occurrence again once it expires, every 30 s
        (FailureMode.NONE, [0, 30, 60, 90]),
        # unlocked: again on the next tick (the fixture's poll interval is 0.5 s)
        (FailureMode.UNLOCK, [0, 0.5, 1.0, 1.5]),
        # committed as if it had succeeded: the next occurrence, an hour later
        (FailureMode.COMMIT, [0, 3600]),
    ],
)
def test_each_failure_mode_decides_when_a_failed_run_runs_again(
    pyncette: Pyncette, mode: FailureMode, expected: list[float]
) -> None:
    @pyncette.task(
        interval=timedelta(hours=1), lease_duration=timedelta(seconds=30), failure_mode=mode
    )
    def failing(context: Context) -> None:
        raise RuntimeError("boom")

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1))
        sim.advance(timedelta(seconds=max(expected)))
        runs = sim.executions(failing)

    first = START + timedelta(hours=1)
    starts = [(r.started_at - first).total_seconds() for r in runs]
    assert starts[: len(expected)] == expected
    assert all(r.outcome == "failed" and isinstance(r.error, RuntimeError) for r in runs)
    assert str(runs[0].error) == "boom"


def test_a_struck_task_is_not_run_until_restored(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(minutes=10))
    def report(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.strike(report)
        sim.advance(timedelta(minutes=30))
        assert sim.executions(report) == []
        pyncette.restore(report)
        sim.advance(timedelta(minutes=10))
        (run,) = sim.executions(report)

    assert run.scheduled_at == START + timedelta(minutes=40)


def test_fixtures_and_middlewares_apply_and_fixtures_are_torn_down_on_exit(
    pyncette: Pyncette,
) -> None:
    events: list[str] = []

    @pyncette.fixture()
    def db() -> Iterator[str]:
        events.append("set up")
        yield "connection"
        events.append("torn down")

    @pyncette.middleware
    def around(context: Context, call_next: Any) -> Any:
        events.append("before")
        try:
            return call_next()
        finally:
            events.append("after")

    @pyncette.task(interval=timedelta(minutes=1))
    def uses(context: Context) -> None:
        events.append(f"ran with {context.db}")

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(minutes=2))
        assert events == ["set up"] + ["before", "ran with connection", "after"] * 2

    assert events[-1] == "torn down"
    assert pyncette.middlewares == [around]  # the simulation's own marker is gone


def test_an_async_task_sleeps_and_heartbeats_on_the_simulated_clock(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(hours=1), lease_duration=timedelta(seconds=30))
    @with_heartbeat()
    async def later(context: Context) -> None:
        await asyncio.sleep(0)
        sleep(90)

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1, minutes=3))
        (run,) = sim.executions(later)

    assert run.outcome == "success"
    assert run.finished_at == run.started_at + timedelta(seconds=90)


def test_the_apps_own_store_and_clock_are_back_after_the_simulation(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    pyncette.schedule_task(hello, "outside", interval=timedelta(minutes=1))
    store = pyncette.store
    with simulate(pyncette, start=datetime(2001, 1, 1, tzinfo=timezone.utc)) as sim:
        assert pyncette.store is not store
        assert pyncette.now() == sim.now
        assert pyncette.get_task_state(hello, "outside") is None
        pyncette.schedule_task(hello, "inside", interval=timedelta(minutes=1))
        sim.advance(timedelta(minutes=5))

    assert pyncette.store is store
    assert abs(pyncette.now() - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert pyncette.get_task_state(hello, "inside") is None
    assert pyncette.get_task_state(hello, "outside") is not None


def test_two_apps_share_one_simulated_store_each_running_its_own_tasks() -> None:
    first = Pyncette(Celery("first", set_as_current=False), url="memory://")
    second = Pyncette(Celery("second", set_as_current=False), url="memory://")

    @first.task(interval=timedelta(minutes=10), name="first.job")
    def job_a(context: Context) -> None: ...

    @second.task(interval=timedelta(minutes=15), name="second.job")
    def job_b(context: Context) -> None: ...

    with simulate(first, second, start=START) as sim:
        sim.advance(timedelta(hours=1))
        assert first.store is second.store
        by_task = {t: len(sim.executions(t)) for t in ("first.job", "second.job")}

    assert by_task == {"first.job": 6, "second.job": 4}


def test_sleep_outside_a_simulation_and_bad_arguments_are_refused(pyncette: Pyncette) -> None:
    with pytest.raises(RuntimeError, match="only in a simulated execution"):
        sleep(1)
    with pytest.raises(ValueError, match="aware"), simulate(pyncette, start=datetime(2026, 1, 1)):
        pass
    with simulate(pyncette, start=START) as sim:
        with pytest.raises(ValueError, match="non-negative timedelta"):
            sim.advance(timedelta(seconds=-1))
        with pytest.raises(ValueError, match="non-negative timedelta"):
            sim.advance(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="once"), simulate(pyncette, pyncette):
        pass


def test_a_simulated_day_of_a_per_minute_task_runs_each_minute_once(
    pyncette: Pyncette,
) -> None:
    @pyncette.task(schedule="* * * * *")
    def minutely(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(days=1))
        runs = sim.executions(minutely)

    assert len(runs) == 24 * 60
    assert [r.scheduled_at for r in runs] == [
        START + timedelta(minutes=i) for i in range(1, 24 * 60 + 1)
    ]


@pytest.mark.parametrize(("catch_up", "late_runs"), [(False, 1), (True, 5)])
def test_runs_missed_while_beat_was_down_are_coalesced_unless_catch_up(
    pyncette: Pyncette, catch_up: bool, late_runs: int
) -> None:
    @pyncette.task(interval=timedelta(hours=1), catch_up=catch_up)
    def hourly(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1))
        sim.advance(timedelta(hours=5, minutes=30), beat=False)  # an outage
        assert len(sim.executions(hourly)) == 1
        sim.advance(timedelta(seconds=10))  # beat is back
        runs = sim.executions(hourly)[1:]

    assert len(runs) == late_runs
    # Each replayed occurrence is sent on the tick after the previous one committed (the
    # fixture's poll interval is 0.5 s).
    back = START + timedelta(hours=6, minutes=30)
    assert [r.started_at for r in runs] == [
        back + timedelta(seconds=i / 2) for i in range(late_runs)
    ]
    missed = [START + timedelta(hours=h) for h in range(2, 7)]
    assert [r.scheduled_at for r in runs] == (missed if catch_up else [missed[0]])


def test_an_execution_runs_on_through_a_beat_outage_and_a_restart(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(hours=1), lease_duration=timedelta(minutes=10))
    def steady(context: Context) -> None:
        sleep(120)

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(hours=1, seconds=30))
        sim.restart_beats()
        sim.advance(timedelta(seconds=60), beat=False)
        sim.advance(timedelta(hours=1, minutes=5))
        runs = sim.executions(steady)

    assert [r.scheduled_at for r in runs] == [START + timedelta(hours=h) for h in (1, 2)]
    assert [r.finished_at - r.started_at for r in runs] == [timedelta(minutes=2)] * 2


def test_several_beats_of_one_app_never_send_one_occurrence_twice(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def per_user(context: Context) -> None: ...

    with simulate(pyncette, start=START, beats=3) as sim:
        for n in range(50):
            pyncette.schedule_task(per_user, f"u{n}", interval=timedelta(minutes=5))
        sim.advance(timedelta(minutes=30))
        runs = sim.executions(per_user)

    occurrences = [(r.instance, r.scheduled_at) for r in runs]
    assert len(occurrences) == 50 * 6
    assert len(set(occurrences)) == len(occurrences)
    with pytest.raises(ValueError, match="beats must be a positive"), simulate(pyncette, beats=0):
        pass


def test_a_simulation_serves_no_health_endpoint_even_when_the_app_sets_one() -> None:
    app = Celery("healthy", set_as_current=False)
    pyncette = Pyncette(app, url="memory://", health_port=18231)  # two beats: one port

    @pyncette.task(interval=timedelta(minutes=1))
    def job(context: Context) -> None: ...

    with simulate(pyncette, start=START, beats=2) as sim:
        sim.advance(timedelta(minutes=2))
        assert len(sim.executions(job)) == 2
