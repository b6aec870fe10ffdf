"""Bounds (``start_at``, ``end_at``): no occurrence before or after them; an instance with none
left is removed after its last run, and a static task has no next run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette.testing import simulate

START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def day(n: int, hour: int = 9) -> datetime:
    return START.replace(hour=hour) + n * DAY


def test_a_bounded_daily_instance_runs_in_its_window_then_is_removed(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        state = pyncette.schedule_task(
            remind, "u", schedule="0 9 * * *", start_at=day(2, 0), end_at=day(4, 12)
        )
        assert (state.scheduled_at, state.start_at, state.end_at) == (day(2), day(2, 0), day(4, 12))
        sim.advance(10 * DAY)
        runs = sim.executions(remind, "u")
        assert pyncette.get_task_state(remind, "u") is None

    assert [r.scheduled_at for r in runs] == [day(2), day(3), day(4)]


def test_an_end_at_on_an_occurrence_includes_it(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *")
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "u", start_at=day(0), end_at=day(1))
        sim.advance(5 * DAY)
        assert [r.scheduled_at for r in sim.executions()] == [day(0), day(1)]


def test_an_interval_starts_at_start_at_and_stops_at_end_at(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def ping(context: Context) -> None: ...

    begin = START + timedelta(hours=3)
    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_tasks(
            ping,
            {"a": {}, "b": {}},
            interval=timedelta(minutes=20),
            start_at=begin,
            end_at=begin + timedelta(hours=1),
        )
        sim.advance(DAY)
        runs = sim.executions(ping, "a")
        assert pyncette.get_task_state(ping, "b") is None

    assert [r.scheduled_at for r in runs] == [begin + k * timedelta(minutes=20) for k in range(4)]
    assert len(sim.executions(ping, "b")) == 4


def test_a_template_gives_default_bounds_that_a_call_replaces(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *", start_at=day(1, 0), end_at=day(2, 12))
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "default")
        pyncette.schedule_task(remind, "longer", end_at=day(3, 12))
        sim.advance(10 * DAY)
        assert [r.scheduled_at for r in sim.executions(remind, "default")] == [day(1), day(2)]
        assert [r.scheduled_at for r in sim.executions(remind, "longer")] == [
            day(1),
            day(2),
            day(3),
        ]


def test_a_bounded_static_task_has_no_next_run_after_end_at(pyncette: Pyncette) -> None:
    @pyncette.task(schedule="0 9 * * *", start_at=day(1, 0), end_at=day(2, 12))
    def daily(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(minutes=1))
        state = pyncette.get_task_state(daily)
        assert state is not None
        assert state.scheduled_at == day(1)
        sim.advance(5 * DAY)
        assert pyncette.get_task_state(daily) is None
        sim.restart_beats()  # a new beat does not bring it back
        sim.advance(5 * DAY)
        assert pyncette.get_task_state(daily) is None
    assert [r.scheduled_at for r in sim.executions(daily)] == [day(1), day(2)]


def test_a_late_claim_after_end_at_runs_what_it_holds_and_stops(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *", end_at=day(3, 12))
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "u")
        sim.advance(6 * DAY, beat=False)
        sim.advance(2 * DAY)
        assert pyncette.get_task_state(remind, "u") is None
    assert [r.scheduled_at for r in sim.executions()] == [day(0)]


def test_a_once_off_outside_its_bounds_is_refused_and_nothing_written(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def once(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        with pytest.raises(ValueError, match="has no occurrence"):
            pyncette.schedule_task(once, "x", execute_at=day(5), end_at=day(4))
        assert pyncette.get_task_state(once, "x") is None


NAIVE = datetime(2026, 3, 5, 9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_at": NAIVE}, "start_at must be an aware datetime"),
        ({"end_at": NAIVE}, "end_at must be an aware datetime"),
        ({"start_at": "2026-03-05"}, "start_at must be a datetime"),
        ({"start_at": day(3), "end_at": day(3)}, r"end_at .* must be after start_at"),
        ({"start_at": day(3), "end_at": day(2)}, r"end_at .* must be after start_at"),
    ],
)
def test_bad_bounds_are_refused_naming_them_and_nothing_is_written(
    pyncette: Pyncette, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pyncette.task(schedule="0 9 * * *", **options)
    with pytest.raises(ValueError, match=message):
        pyncette.partitioned_task(partition_count=2, **options)  # type: ignore[arg-type]

    @pyncette.dynamic_task(schedule="0 9 * * *")
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        with pytest.raises(ValueError, match=message):
            pyncette.schedule_task(remind, "x", **options)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=message):
            pyncette.schedule_tasks(remind, {"y": {}}, **options)  # type: ignore[arg-type]
        assert pyncette.get_task_state(remind, "x") is None
        assert pyncette.get_task_state(remind, "y") is None


def test_a_call_end_at_before_the_template_start_at_is_refused(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(schedule="0 9 * * *", start_at=day(3))
    def remind(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        with pytest.raises(ValueError, match=r"end_at .* must be after start_at"):
            pyncette.schedule_task(remind, "x", end_at=day(2))
        assert pyncette.get_task_state(remind, "x") is None


def test_reschedule_keeps_the_bounds_of_the_instance(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def remind(context: Context) -> None:
        context.reschedule(schedule="0 18 * * *")

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "u", schedule="0 9 * * *", end_at=day(2, 12))
        sim.advance(5 * DAY)
        assert pyncette.get_task_state(remind, "u") is None
    assert [r.scheduled_at for r in sim.executions()] == [day(0), day(0, 18), day(1, 18)]
