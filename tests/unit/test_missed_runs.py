"""The missed-run policy: coalescing is computed directly, never by walking missed slots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celery_pyncette.schedules import CronSchedule, IntervalSchedule, Schedule

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_slots_that_fell_while_the_run_ran_become_one_run_due_at_once() -> None:
    s = CronSchedule("* * * * * *")
    scheduled, started, committed = (
        utc(2030, 1, 1, 0, 0, 0),
        utc(2030, 1, 1, 0, 0, 0, 10),
        utc(2030, 1, 1, 0, 0, 5, 300),
    )

    assert s.next_run(scheduled, committed, catch_up=False, started_at=started) == utc(
        2030, 1, 1, 0, 0, 5
    )


def test_a_run_committed_just_after_the_next_slot_does_not_skip_it() -> None:
    s = CronSchedule("* * * * * *")
    scheduled = utc(2030, 1, 1, 0, 0, 0)

    result = s.next_run(
        scheduled, scheduled + timedelta(seconds=1, milliseconds=50), False, started_at=scheduled
    )

    assert result == utc(2030, 1, 1, 0, 0, 1)


def test_slots_missed_before_the_run_started_are_covered_by_it() -> None:
    s = CronSchedule("0 * * * *")
    down_since = utc(2030, 1, 1, 0)
    back_up = utc(2030, 1, 2, 7, 30)

    result = s.next_run(down_since, back_up + timedelta(seconds=2), False, started_at=back_up)

    assert result == utc(2030, 1, 2, 8)


def test_an_interval_keeps_its_phase_when_slots_fell_during_the_run() -> None:
    s = IntervalSchedule(timedelta(seconds=10))
    scheduled = utc(2030, 1, 1, 0, 0, 3)

    result = s.next_run(scheduled, utc(2030, 1, 1, 0, 0, 45), False, started_at=scheduled)

    assert result == utc(2030, 1, 1, 0, 0, 43)


def test_catch_up_ignores_when_the_run_started() -> None:
    s = CronSchedule("* * * * * *")
    scheduled = utc(2030, 1, 1)

    assert s.next_run(scheduled, utc(2030, 1, 2), True, started_at=utc(2030, 1, 1, 12)) == utc(
        2030, 1, 1, 0, 0, 1
    )


class CountingSchedule(Schedule):
    """Every second, counting next_after calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.inner = CronSchedule("* * * * * *")

    def first_run(self, now: datetime) -> datetime | None:
        return self.inner.first_run(now)

    def next_after(self, after: datetime) -> datetime | None:
        self.calls += 1
        return self.inner.next_after(after)

    def to_spec(self) -> dict[str, Any]:
        return self.inner.to_spec()

    @property
    def description(self) -> str:
        return "counting"


def test_finding_the_latest_of_a_year_of_missed_per_second_slots_takes_few_steps() -> None:
    s = CountingSchedule()
    due = utc(2029, 1, 1)
    now = utc(2030, 1, 1, 0, 0, 0, 700000)

    assert s.due_occurrence(due, now, catch_up=False) == utc(2030, 1, 1)
    assert s.calls < 80  # ~log2(one year in microseconds) = 45, not 31 million


@settings(max_examples=200, deadline=None)
@given(
    expression=st.sampled_from(
        ["* * * * * *", "*/7 * * * *", "0 9 * * 1-5", "30 2 * * *", "* * * * * */13"]
    ),
    zone=st.sampled_from([None, "Europe/Dublin", "America/New_York", "Asia/Kolkata"]),
    due_offset=st.integers(0, 10_000_000),
    started=st.integers(0, 100_000),
    ran=st.integers(0, 1_000_000),
)
def test_next_run_is_the_latest_slot_missed_during_the_run_or_the_first_after_it(
    expression: str, zone: str | None, due_offset: int, started: int, ran: int
) -> None:
    s = CronSchedule(expression, zone)
    scheduled = s.next_after(utc(2029, 3, 1) + timedelta(seconds=due_offset))
    assert scheduled is not None
    started_at = scheduled + timedelta(seconds=started)
    now = started_at + timedelta(seconds=ran, microseconds=1)

    result = s.next_run(scheduled, now, False, started_at=started_at)

    assert result is not None
    first_after_start = s.next_after(started_at)
    assert first_after_start is not None
    if first_after_start > now:
        assert result == first_after_start
    else:
        assert first_after_start <= result <= now
        after = s.next_after(result)
        assert after is not None
        assert after > now


@pytest.mark.parametrize(
    "interval", [timedelta(seconds=1), timedelta(minutes=7), timedelta(hours=5)]
)
def test_interval_due_occurrence_is_the_latest_phase_slot(interval: timedelta) -> None:
    s = IntervalSchedule(interval)
    due = utc(2030, 1, 1, 0, 0, 0, 250000)
    now = due + interval * 1000 + interval / 2

    assert s.due_occurrence(due, now, catch_up=False) == due + interval * 1000
    assert s.due_occurrence(due, now, catch_up=True) == due
