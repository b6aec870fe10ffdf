"""Bounded and jittered schedules (``schedules._window``, ``schedules._jitter``) and their spec."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from celery.schedules import solar

from celery_pyncette.schedules import (
    BoundedSchedule,
    CelerySchedule,
    CronSchedule,
    IntervalSchedule,
    JitteredSchedule,
    OnceSchedule,
    read_spec,
    schedule_from_spec,
)

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
DAILY = CronSchedule("0 9 * * *")


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def test_specs_without_bounds_or_jitter_are_the_plain_ones() -> None:
    spec = {"kind": "cron", "expression": "0 9 * * *", "timezone": None}
    assert DAILY.to_spec() == spec
    assert schedule_from_spec(spec) == DAILY
    assert type(schedule_from_spec(spec)) is CronSchedule


@pytest.mark.parametrize(
    "schedule",
    [
        BoundedSchedule(DAILY, at(3, 0), at(9)),
        BoundedSchedule(OnceSchedule(at(5)), None, at(6)),
        BoundedSchedule(IntervalSchedule(timedelta(minutes=5)), at(3), None),
        JitteredSchedule(DAILY, timedelta(minutes=10)),
        JitteredSchedule(IntervalSchedule(timedelta(seconds=30)), timedelta(seconds=2.5)),
        JitteredSchedule(
            BoundedSchedule(CronSchedule("30 1 * * *", "America/New_York"), at(3), at(20)),
            timedelta(minutes=10, microseconds=7),
        ),
    ],
    ids=repr,
)
def test_a_bounded_or_jittered_schedule_round_trips_through_its_spec(schedule: object) -> None:
    assert isinstance(schedule, (BoundedSchedule, JitteredSchedule))
    spec = schedule.to_spec()
    assert schedule_from_spec(spec) == schedule
    assert schedule_from_spec(spec).to_spec() == spec


def test_read_spec_shows_bounds_and_jitter() -> None:
    spec = JitteredSchedule(BoundedSchedule(DAILY, at(3), at(9)), timedelta(minutes=10)).to_spec()
    stored = read_spec(spec)
    assert (stored.kind, stored.expression) == ("cron", "0 9 * * *")
    assert (stored.start_at, stored.end_at, stored.jitter) == (at(3), at(9), timedelta(minutes=10))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"start_at": 5}, "needs an ISO 8601 'start_at'"),
        ({"end_at": "soon"}, "'end_at' is not an ISO 8601 datetime"),
        ({"jitter": "10m"}, "needs a number of 'jitter'"),
        ({"jitter": float("nan")}, "'jitter' must be finite"),
        ({"jitter": -1}, "jitter must be positive"),
        ({"start_at": "2026-03-05T09:00:00"}, "start_at must be an aware datetime"),
    ],
)
def test_a_malformed_bound_or_jitter_in_a_spec_is_a_value_error(
    extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        schedule_from_spec({**DAILY.to_spec(), **extra})


def test_bounds_keep_occurrences_in_the_window() -> None:
    bounded = BoundedSchedule(DAILY, at(3, 12), at(5))
    assert bounded.first_run(T0) == at(4)
    assert bounded.next_after(at(4)) == at(5)  # end_at on an occurrence includes it
    assert bounded.next_after(at(5)) is None
    assert bounded.next_run(at(5), at(5), catch_up=False) is None
    assert BoundedSchedule(DAILY, None, at(2, 8)).first_run(T0) is None


def test_an_interval_starts_at_start_at() -> None:
    bounded = BoundedSchedule(IntervalSchedule(timedelta(hours=1)), at(3), None)
    assert bounded.first_run(T0) == at(3)
    assert bounded.next_run(at(3), at(3), catch_up=False) == at(3, 10)
    # Once started, a late first run later than start_at is not moved back.
    assert bounded.first_run(at(3, 12)) == at(3, 13)


def test_missed_occurrences_coalesce_into_the_last_one_before_end_at() -> None:
    bounded = BoundedSchedule(DAILY, None, at(5, 12))
    # The 09:00 run of day 2 started on time and was committed on day 9: the days it covered
    # coalesce into day 5 (the last before end_at), not into day 9.
    assert bounded.next_run(at(2), at(9), catch_up=False, started_at=at(2)) == at(5)
    assert bounded.next_run(at(2), at(9), catch_up=True) == at(3)
    assert bounded.next_run(at(5), at(9), catch_up=True) is None


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 3, 3), None, "start_at must be an aware datetime"),
        (None, datetime(2026, 3, 3), "end_at must be an aware datetime"),
        ("2026-03-03", None, "start_at must be a datetime"),
        (at(3), at(3), r"end_at .* must be after start_at"),
        (None, None, "give start_at or end_at"),
    ],
)
def test_bad_bounds_are_refused(start: object, end: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BoundedSchedule(DAILY, start, end)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "schedule",
    [OnceSchedule(at(5)), BoundedSchedule(OnceSchedule(at(5)), at(3), None)],
    ids=["once", "bounded once"],
)
def test_jitter_on_a_once_off_is_refused(schedule: object) -> None:
    with pytest.raises(ValueError, match="jitter applies to a recurring schedule"):
        JitteredSchedule(schedule, timedelta(minutes=1))  # type: ignore[arg-type]


def test_jitter_on_a_celery_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter applies to a recurring schedule"):
        JitteredSchedule(CelerySchedule(solar("sunrise", 53.3, -6.2)), timedelta(minutes=1))


@pytest.mark.parametrize("jitter", [timedelta(0), timedelta(seconds=-5), 30, timedelta(days=4000)])
def test_a_bad_jitter_is_refused(jitter: object) -> None:
    with pytest.raises(ValueError, match="jitter"):
        JitteredSchedule(DAILY, jitter)  # type: ignore[arg-type]


def test_an_unbound_jittered_schedule_refuses_to_compute_offsets() -> None:
    with pytest.raises(RuntimeError, match="bound_to"):
        JitteredSchedule(DAILY, timedelta(minutes=1)).first_run(T0)


def test_offsets_depend_on_the_instance_and_the_occurrence_and_nothing_else() -> None:
    def jittered(instance: str) -> JitteredSchedule:
        return JitteredSchedule(DAILY, timedelta(minutes=10)).bound_to("t", instance)

    a, again, b = jittered("a"), jittered("a"), jittered("b")
    assert a.offset(at(3)) == again.offset(at(3))
    assert a.offset(at(3)) != a.offset(at(4))
    assert a.offset(at(3)) != b.offset(at(3))
    assert a.offset(at(3)) != JitteredSchedule(DAILY, timedelta(minutes=10)).bound_to(
        "other", "a"
    ).offset(at(3))
    assert all(timedelta(0) <= a.offset(at(d)) < timedelta(minutes=10) for d in range(1, 31))


@pytest.mark.parametrize(
    "inner",
    [CronSchedule("* * * * * */3"), CronSchedule("0,1,2,30 * * * *"), DAILY],
    ids=["every 3 s", "uneven minutes", "daily"],
)
def test_the_occurrence_is_recovered_exactly_and_sends_keep_their_order(
    inner: CronSchedule,
) -> None:
    """Even where the jitter exceeds the gaps: an offset never reaches the next occurrence."""
    jittered = JitteredSchedule(inner, timedelta(minutes=10)).bound_to("t", "i")
    occurrence = inner.first_run(T0)
    sends = []
    for _ in range(200):
        assert occurrence is not None
        sent = jittered._sent(occurrence)
        assert sent is not None
        assert jittered.nominal(sent) == occurrence
        sends.append(sent)
        occurrence = inner.next_after(occurrence)
    assert all(x < y for x, y in itertools.pairwise(sends))


def test_an_interval_offset_is_one_per_instance_and_below_the_interval() -> None:
    jittered = JitteredSchedule(
        IntervalSchedule(timedelta(seconds=20)), timedelta(minutes=1)
    ).bound_to("t", "i")
    first = jittered.first_run(T0)
    assert first is not None
    offset = first - (T0 + timedelta(seconds=20))
    assert timedelta(0) <= offset < timedelta(seconds=20)
    nominal = jittered.nominal(first)
    assert nominal == T0 + timedelta(seconds=20)
    assert jittered.next_run(nominal, first, catch_up=False) == first + timedelta(seconds=20)


def test_a_next_run_the_schedule_did_not_write_is_read_as_the_latest_occurrence() -> None:
    jittered = JitteredSchedule(DAILY, timedelta(minutes=10)).bound_to("t", "i")
    assert jittered.nominal(at(3)) == at(3)  # stored before the jitter was added
    assert jittered.nominal(at(3, 12)) == at(3, 12)  # no occurrence within the jitter before


@pytest.mark.parametrize("inner", [DAILY, CronSchedule("* * * * * */3")], ids=["daily", "3 s"])
def test_send_after_is_the_first_send_time_after_an_instant(inner: CronSchedule) -> None:
    jittered = JitteredSchedule(inner, timedelta(minutes=10)).bound_to("t", "i")
    occurrence = inner.first_run(T0)
    sends: list[datetime] = []
    for _ in range(50):
        assert occurrence is not None
        sent = jittered._sent(occurrence)
        assert sent is not None
        sends.append(sent)
        occurrence = inner.next_after(occurrence)
    # Each send time, just before each, and each occurrence itself (due, not yet sent).
    probes = [*sends[:-1], *(s - timedelta(microseconds=1) for s in sends[1:-1])]
    probes += [jittered.nominal(s) for s in sends[1:-1]]
    for probe in probes:
        assert jittered.send_after(probe) == min(s for s in sends if s > probe)
    assert DAILY.send_after(T0) == DAILY.next_after(T0)
