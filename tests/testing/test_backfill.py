"""``backfill``: each occurrence of a past window once, with its own ``scheduled_at``; the schedule
kept; a second backfill of the window runs nothing again. Run on the testing kit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette._records import BACKFILLS_TASK
from celery_pyncette.testing import simulate

UTC = timezone.utc
#: Monday 2026-11-02, 12:00 UTC; the weekend before it is Saturday 31 Oct and Sunday 1 Nov.
START = datetime(2026, 11, 2, 12, tzinfo=UTC)
SATURDAY = datetime(2026, 10, 31, tzinfo=UTC)
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)


def names(pyncette: Pyncette, task: str) -> list[str]:
    return [r.key.instance for r in pyncette.store.list_instances(task, 0, 1000)]


def test_a_weekend_of_a_daily_task_runs_its_two_days_each_with_its_time(
    pyncette: Pyncette,
) -> None:
    seen: list[tuple[str | None, datetime | None]] = []

    @pyncette.dynamic_task()
    def report(context: Context) -> None:
        seen.append((context.instance, context.scheduled_at))

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(report, "acme", schedule="0 9 * * *")
        before = pyncette.get_task_state(report, "acme")
        written = pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY)
        sim.advance(timedelta(seconds=1))
        after = pyncette.get_task_state(report, "acme")
        runs = sim.executions(report)
        left = names(pyncette, report.name)

    weekend = [datetime(2026, 10, 31, 9, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC)]
    assert written == weekend
    assert [(r.instance, r.scheduled_at, r.outcome) for r in runs] == [
        ("acme", at, "success") for at in weekend
    ]
    assert seen == [("acme", at) for at in weekend]
    assert before is not None
    assert after is not None
    assert after.scheduled_at == before.scheduled_at == datetime(2026, 11, 3, 9, tzinfo=UTC)
    assert left == ["acme"]


def test_a_second_backfill_of_the_same_window_runs_nothing(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def report(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(report, "acme", schedule="0 9 * * *")
        pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY)
        sim.advance(timedelta(seconds=1))
        again = pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY)
        # A wider window runs only the days not backfilled before.
        wider = pyncette.backfill(
            report, "acme", start=SATURDAY - timedelta(days=1), end=MONDAY + timedelta(hours=10)
        )
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(report)

    assert again == []
    assert wider == [datetime(2026, 10, 30, 9, tzinfo=UTC), datetime(2026, 11, 2, 9, tzinfo=UTC)]
    assert sorted(r.scheduled_at for r in runs if r.scheduled_at) == [
        datetime(2026, 10, d, 9, tzinfo=UTC) for d in (30, 31)
    ] + [datetime(2026, 11, d, 9, tzinfo=UTC) for d in (1, 2)]


def test_a_second_backfill_before_the_first_ran_does_not_double_it(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def report(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(report, "acme", schedule="0 9 * * *")
        pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY)
        assert pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY) == []
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(report)

    assert len(runs) == 2


def test_a_window_over_max_is_refused_and_nothing_is_written(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def tick(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(tick, "t", interval=timedelta(minutes=1))
        with pytest.raises(ValueError, match="more than 1000 occurrences"):
            pyncette.backfill(tick, "t", start=START - timedelta(days=1), end=START)
        with pytest.raises(ValueError, match="more than 5 occurrences"):
            pyncette.backfill(tick, "t", start=START - timedelta(minutes=6), end=START, max=5)
        assert names(pyncette, tick.name) == ["t"]
        assert pyncette.store.list_instances(BACKFILLS_TASK, 0, 10) == []
        written = pyncette.backfill(tick, "t", start=START - timedelta(minutes=5), end=START, max=5)
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(tick)

    assert written == [START - timedelta(minutes=m) for m in range(5, 0, -1)]
    assert sorted(r.scheduled_at for r in runs if r.scheduled_at) == written


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 10, 31), MONDAY, "start must be an aware datetime"),
        (SATURDAY, "2026-11-02", "end must be an aware datetime"),
        (MONDAY, SATURDAY, "must be before end"),
        (START + timedelta(hours=1), START + timedelta(hours=2), "not in the past"),
    ],
)
def test_a_bad_window_is_refused_and_nothing_is_written(
    pyncette: Pyncette, start: object, end: object, message: str
) -> None:
    @pyncette.dynamic_task()
    def report(context: Context) -> None: ...

    with simulate(pyncette, start=START):
        pyncette.schedule_task(report, "acme", schedule="0 9 * * *")
        with pytest.raises(ValueError, match=message):
            pyncette.backfill(report, "acme", start=start, end=end)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max must be a positive integer"):
            pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY, max=0)
        assert names(pyncette, report.name) == ["acme"]
        assert pyncette.store.list_instances(BACKFILLS_TASK, 0, 10) == []


def test_an_end_in_the_future_is_taken_as_now(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task()
    def hourly(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(hourly, "h", schedule="30 * * * *")
        written = pyncette.backfill(
            hourly, "h", start=START - timedelta(hours=2), end=START + timedelta(days=1)
        )
        # The window remembered ends at now: what comes later is the schedule's own to run.
        sim.advance(timedelta(hours=1))
        runs = sim.executions(hourly)

    assert written == [START - timedelta(minutes=90), START - timedelta(minutes=30)]
    assert [r.scheduled_at for r in runs] == [*written, START + timedelta(minutes=30)]


def test_a_static_task_is_backfilled_too(pyncette: Pyncette) -> None:
    @pyncette.task(schedule="0 9 * * *")
    def nightly(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        sim.advance(timedelta(seconds=1))
        written = asyncio.run(pyncette.abackfill(nightly, start=SATURDAY, end=MONDAY))
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(nightly)
        state = pyncette.get_task_state(nightly)

    assert [(r.instance, r.scheduled_at) for r in runs] == [(None, at) for at in written]
    assert len(written) == 2
    assert state is not None
    assert state.scheduled_at == datetime(2026, 11, 3, 9, tzinfo=UTC)


def test_a_backfilled_occurrence_is_neither_missed_nor_expired(pyncette: Pyncette) -> None:
    """A backfill is late on purpose: the task's misfire grace and expiry do not drop it."""

    @pyncette.dynamic_task(misfire_grace=timedelta(minutes=1), expires=60)
    def report(context: Context) -> None: ...

    with simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(report, "acme", schedule="0 9 * * *")
        pyncette.backfill(report, "acme", start=SATURDAY, end=MONDAY)
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(report)

    assert [r.outcome for r in runs] == ["success", "success"]
