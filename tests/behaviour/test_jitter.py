"""Jitter (``jitter=timedelta``): each occurrence is sent at a fixed offset in ``[0, jitter)``
after its time, derived from the task, the instance and the occurrence; ``scheduled_at`` stays the
nominal time. Run on the testing kit (an execution's ``started_at`` is when beat sent it)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, ExecutionMode, Pyncette
from celery_pyncette.testing import simulate, sleep

START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
NINE = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
TEN_MINUTES = timedelta(minutes=10)


def test_a_thousand_daily_instances_spread_over_the_jitter_each_sent_once(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *", jitter=TEN_MINUTES)
    def remind(context: Context) -> None: ...

    names: dict[str, dict[str, Any]] = {f"user-{i}": {} for i in range(1000)}
    with simulate(pyncette, start=START) as sim:
        assert pyncette.schedule_tasks(remind, names) == []
        sim.advance(timedelta(hours=2))
        runs = sim.executions(remind)

    assert sorted(str(r.instance) for r in runs) == sorted(names)  # every instance, each once
    assert {r.scheduled_at for r in runs} == {NINE}
    assert all(r.outcome == "success" for r in runs)
    assert min(r.started_at for r in runs) >= NINE
    assert max(r.started_at for r in runs) < NINE + TEN_MINUTES
    per_minute = Counter(int((r.started_at - NINE) / timedelta(minutes=1)) for r in runs)
    assert set(per_minute) == set(range(10))
    assert max(per_minute.values()) <= 2 * len(runs) / 10


def test_an_occurrence_sent_again_after_its_lease_expired_keeps_its_offset(
    pyncette: Pyncette,
) -> None:
    attempts: list[datetime | None] = []

    @pyncette.dynamic_task(jitter=TEN_MINUTES, lease_duration=timedelta(minutes=30))
    def report(context: Context) -> None:
        attempts.append(context.scheduled_at)
        if len(attempts) == 1:
            sleep(3600)  # outlives its lease: the occurrence is claimed and sent again

    with simulate(pyncette, start=START) as sim:
        state = pyncette.schedule_task(report, "r", schedule="0 9 * * *")
        assert state.scheduled_at == NINE
        assert state.sends_at is not None
        assert NINE <= state.sends_at < NINE + TEN_MINUTES
        sim.advance(timedelta(hours=2))
        first, second = sim.executions(report, "r")[:2]

    assert first.scheduled_at == second.scheduled_at == NINE
    assert second.started_at - first.started_at == timedelta(minutes=30)
    assert first.started_at == state.sends_at
    assert attempts[:2] == [NINE, NINE]


def test_two_beats_agree_on_every_offset(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(schedule="*/30 * * * *", jitter=timedelta(minutes=5))
    def poll(context: Context) -> None: ...

    def sends(beats: int) -> list[tuple[str | None, datetime | None, datetime]]:
        with simulate(pyncette, start=START, beats=beats) as sim:
            pyncette.schedule_tasks(poll, {f"p{i}": {} for i in range(40)})
            sim.advance(timedelta(hours=3, minutes=5))
            return sorted((r.instance, r.scheduled_at, r.started_at) for r in sim.executions())

    one, two = sends(1), sends(2)
    assert one == two
    assert len(one) == 40 * 6  # 08:30 .. 11:00, each occurrence once
    assert all(nominal is not None and nominal.minute in (0, 30) for _, nominal, _ in one)
    assert len({sent - nominal for _, nominal, sent in one if nominal}) > 100


def test_missed_jittered_occurrences_coalesce_into_one_run_at_its_offset(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(schedule="0 * * * *", jitter=TEN_MINUTES)
    def hourly(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(hourly, "h")
        sim.advance(timedelta(hours=5, minutes=30), beat=False)  # 09:00 .. 13:00 missed
        sim.advance(timedelta(minutes=45))
        runs = sim.executions(hourly, "h")

    # As without jitter: the stored occurrence (09:00) runs once, late, at 13:30, covering those
    # missed up to then; 14:00 then goes out at its own offset.
    assert [r.scheduled_at.hour for r in runs if r.scheduled_at] == [9, 14]
    assert runs[0].started_at == START + timedelta(hours=5, minutes=30)
    assert timedelta(0) <= runs[1].started_at - runs[1].scheduled_at < TEN_MINUTES  # type: ignore[operator]


def test_catch_up_replays_each_missed_occurrence_once_with_its_nominal_time(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(schedule="0 * * * *", jitter=TEN_MINUTES, catch_up=True)
    def hourly(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(hourly, "h")
        sim.advance(timedelta(hours=3, minutes=30), beat=False)
        sim.advance(timedelta(minutes=1))
        runs = sim.executions(hourly, "h")

    assert [r.scheduled_at.hour for r in runs if r.scheduled_at] == [9, 10, 11]


def test_an_interval_keeps_its_period_between_sends_and_spreads_instances(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(interval=timedelta(minutes=15), jitter=timedelta(minutes=5))
    def ping(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_tasks(ping, {"a": {}, "b": {}, "c": {}})
        sim.advance(timedelta(hours=1, minutes=10))
        by_instance = {i: sim.executions(ping, i) for i in "abc"}

    offsets = set()
    for runs in by_instance.values():
        assert [r.scheduled_at for r in runs] == [
            START + k * timedelta(minutes=15) for k in range(1, 5)
        ]
        gaps = {b.started_at - a.started_at for a, b in itertools.pairwise(runs)}
        assert gaps == {timedelta(minutes=15)}
        offset = runs[0].started_at - START - timedelta(minutes=15)
        assert timedelta(0) <= offset < timedelta(minutes=5)
        offsets.add(offset)
    assert len(offsets) == 3


def test_a_static_task_is_jittered_and_a_beat_restart_keeps_its_time(pyncette: Pyncette) -> None:
    @pyncette.task(schedule="0 9 * * *", jitter=TEN_MINUTES)
    def daily(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(minutes=1))
        state = pyncette.get_task_state(daily)
        assert state is not None
        assert state.scheduled_at == NINE
        sim.restart_beats()
        sim.advance(timedelta(days=1, hours=2))
        runs = sim.executions(daily)

    assert [r.scheduled_at for r in runs] == [NINE, NINE + timedelta(days=1)]
    assert runs[0].started_at == state.sends_at
    assert all(timedelta(0) <= r.started_at - r.scheduled_at < TEN_MINUTES for r in runs)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"jitter": timedelta(0)}, "jitter must be positive"),
        ({"jitter": timedelta(seconds=-1)}, "jitter must be positive"),
        ({"jitter": 30}, "jitter must be a positive timedelta"),
        ({"jitter": timedelta(days=4000)}, "jitter of"),
    ],
)
def test_a_bad_jitter_is_refused_naming_it(
    pyncette: Pyncette, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pyncette.dynamic_task(**options)

    @pyncette.dynamic_task(schedule="0 9 * * *")
    def plain(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        with pytest.raises(ValueError, match=message):
            pyncette.schedule_task(plain, "x", **options)  # type: ignore[arg-type]
        assert pyncette.get_task_state(plain, "x") is None


def test_jitter_on_a_once_off_is_refused_and_nothing_is_written(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def once(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        with pytest.raises(ValueError, match="jitter applies to a recurring schedule"):
            pyncette.schedule_task(once, "x", execute_at=NINE, jitter=TEN_MINUTES)
        with pytest.raises(ValueError, match="jitter applies to a recurring schedule"):
            pyncette.schedule_tasks(once, {"y": {}}, execute_at=NINE, jitter=TEN_MINUTES)
        assert pyncette.get_task_state(once, "x") is None
        assert pyncette.get_task_state(once, "y") is None


def test_a_once_off_of_a_jittered_template_runs_at_its_time(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *", jitter=TEN_MINUTES)
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        state = pyncette.schedule_task(remind, "now", execute_at=NINE)
        assert state.jitter is None
        sim.advance(timedelta(hours=2))
        (run,) = sim.executions(remind, "now")
    assert run.scheduled_at == run.started_at == NINE


def test_jitter_on_a_sql_store_sends_each_occurrence_once_at_its_offset(
    pyncette: Pyncette, tmp_path: Any
) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *", jitter=TEN_MINUTES)
    def remind(context: Context) -> None: ...

    url = f"sqlite:///{tmp_path}/jitter.sqlite3"
    with simulate(pyncette, start=START, url=url, beats=2) as sim:
        pyncette.schedule_tasks(remind, {f"u{i}": {} for i in range(50)})
        sim.advance(timedelta(days=2))
        runs = sim.executions(remind)

    assert len(runs) == 100
    assert {(r.instance, r.scheduled_at) for r in runs} == {
        (f"u{i}", NINE + k * timedelta(days=1)) for i in range(50) for k in range(2)
    }
    assert all(timedelta(0) <= r.started_at - r.scheduled_at < TEN_MINUTES for r in runs)  # type: ignore[operator]
    assert len({r.started_at - r.scheduled_at for r in runs}) == 100  # type: ignore[operator]


def test_an_at_most_once_jittered_task_is_committed_for_its_nominal_time(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(
        schedule="0 9 * * *", jitter=TEN_MINUTES, execution_mode=ExecutionMode.AT_MOST_ONCE
    )
    def digest(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_tasks(digest, {f"d{i}": {} for i in range(20)})
        sim.advance(timedelta(days=2, hours=2))
        runs = sim.executions(digest)
        states = [pyncette.get_task_state(digest, f"d{i}") for i in range(20)]

    days = [NINE + k * timedelta(days=1) for k in range(3)]  # 2, 3 and 4 March
    assert sorted((r.scheduled_at, r.instance) for r in runs) == sorted(
        (day, f"d{i}") for day in days for i in range(20)
    )
    assert all(timedelta(0) <= r.started_at - r.scheduled_at < TEN_MINUTES for r in runs)  # type: ignore[operator]
    assert {s.scheduled_at for s in states if s is not None} == {NINE + timedelta(days=3)}


def test_a_jittered_occurrence_sent_at_its_offset_is_not_taken_for_a_late_one() -> None:
    """The misfire grace counts from when an occurrence was due to be sent: a grace shorter than
    the jitter drops nothing that beat sends on time."""
    pyncette = Pyncette(Celery("jitter-grace", set_as_current=False), url="memory://")

    @pyncette.dynamic_task(
        schedule="0 9 * * *", jitter=timedelta(minutes=10), misfire_grace=timedelta(seconds=5)
    )
    def daily(context: Context) -> None: ...

    start = datetime(2026, 3, 1, 8, tzinfo=timezone.utc)
    with simulate(pyncette, start=start) as sim:
        for n in range(50):
            pyncette.schedule_task(daily, f"u{n}")
        sim.advance(timedelta(hours=2))
        runs = sim.executions(daily)

    assert len(runs) == 50
    assert {r.outcome for r in runs} == {"success"}
