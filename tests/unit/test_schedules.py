"""Next-run arithmetic: cron with seconds, time zones and DST, intervals, once-offs, Celery."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import croniter
import pytest
from celery import Celery
from celery.schedules import BaseSchedule, crontab, schedstate, schedule, solar

from celery_pyncette._state import TaskState
from celery_pyncette.schedules import (
    CelerySchedule,
    CronSchedule,
    IntervalSchedule,
    OnceSchedule,
    Schedule,
    StoredSpec,
    from_celery,
    parse_timezone,
    read_spec,
    schedule_from_spec,
)
from celery_pyncette.stores.base import InstanceKey, InstanceRecord

UTC = timezone.utc


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def occurrences(s: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every occurrence in (start, end], by repeated next_after."""
    found: list[datetime] = []
    current = s.next_after(start)
    while current is not None and current <= end:
        found.append(current)
        current = s.next_after(current)
    return found


def local(s: CronSchedule, instant: datetime) -> str:
    return instant.astimezone(parse_timezone(s.timezone or "UTC")).strftime("%m-%d %H:%M:%S %Z")


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    app = Celery("schedules", set_as_current=False)
    yield app
    app.close()


# --- cron fields -------------------------------------------------------------------------------


def test_six_field_cron_has_seconds_last() -> None:
    every_ten_seconds = CronSchedule("* * * * * */10")
    assert occurrences(every_ten_seconds, utc(2030, 1, 1), utc(2030, 1, 1, 0, 0, 40)) == [
        utc(2030, 1, 1, 0, 0, s) for s in (10, 20, 30, 40)
    ]


def test_20_4_star_star_star_star_fires_sixty_times_a_day_not_once() -> None:
    s = CronSchedule("20 4 * * * *")
    runs = occurrences(s, utc(2030, 1, 1), utc(2030, 1, 2))
    assert runs == [utc(2030, 1, 1, 4, 20, second) for second in range(60)]


def test_star_slash_10_in_the_minute_field_fires_every_second_of_every_tenth_minute() -> None:
    s = CronSchedule("*/10 * * * * *")
    assert s.next_after(utc(2030, 1, 1, 0, 0, 0)) == utc(2030, 1, 1, 0, 0, 1)
    assert s.next_after(utc(2030, 1, 1, 0, 0, 59)) == utc(2030, 1, 1, 0, 10, 0)


def test_five_field_cron_runs_on_whole_minutes() -> None:
    s = CronSchedule("*/15 * * * *")
    assert s.next_after(utc(2030, 1, 1, 0, 0, 0)) == utc(2030, 1, 1, 0, 15)
    assert s.next_after(utc(2030, 1, 1, 0, 14, 59, 999999)) == utc(2030, 1, 1, 0, 15)


def test_next_after_is_strictly_after_even_on_an_occurrence() -> None:
    s = CronSchedule("0 12 * * *")
    assert s.next_after(utc(2030, 1, 1, 12)) == utc(2030, 1, 2, 12)


def test_day_of_month_and_day_of_week_combine_with_or_like_cron() -> None:
    s = CronSchedule("0 0 13 * 5")  # the 13th, and every Friday
    runs = occurrences(s, utc(2030, 9, 1), utc(2030, 9, 30))
    assert [r.day for r in runs] == [6, 13, 20, 27]  # Fridays; the 13th is itself a Friday
    runs = occurrences(s, utc(2030, 10, 1), utc(2030, 10, 14))
    assert [r.day for r in runs] == [4, 11, 13]


def test_weekday_zero_and_seven_are_sunday() -> None:
    assert CronSchedule("0 0 * * 0").next_after(utc(2030, 1, 1)) == utc(2030, 1, 6)
    assert CronSchedule("0 0 * * 7").next_after(utc(2030, 1, 1)) == utc(2030, 1, 6)


def test_leap_day_cron_is_valid_and_waits_for_a_leap_year() -> None:
    assert CronSchedule("0 0 29 2 *").next_after(utc(2030, 1, 1)) == utc(2032, 2, 29)


def test_fifth_monday_of_february_is_rare_but_valid() -> None:
    assert CronSchedule("0 0 * 2 1#5").next_after(utc(2017, 1, 1)) == utc(2044, 2, 29)


def test_cron_alias_is_accepted() -> None:
    assert CronSchedule("@daily").next_after(utc(2030, 1, 1, 5)) == utc(2030, 1, 2)


def test_expression_whitespace_is_normalised() -> None:
    s = CronSchedule("  0   12 * *\t*  ")
    assert s.expression == "0 12 * * *"
    assert s == CronSchedule("0 12 * * *")


def test_past_the_end_of_the_calendar_there_is_no_next_run() -> None:
    assert CronSchedule("0 0 * * *").next_after(utc(9999, 12, 31, 12)) is None
    assert IntervalSchedule(timedelta(days=2)).next_after(utc(9999, 12, 31)) is None


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "4 fields"),
        ("* * * * * * 2030", "7 fields"),
        ("", "0 fields"),
        ("61 * * * *", "61"),
        ("0 24 * * *", "24"),
        ("0 0 0 * *", "0 0 0"),
        ("0 0 * 13 *", "13"),
        ("0 0 * * 8", "8"),
        ("*/0 * * * *", "step"),
        ("a b c d e", "a b c d e"),
        ("@reboot", "@reboot"),
        ("H * * * *", "hashed"),
        ("R 0 * * *", "random"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4 *", "never fires"),
        ("0 0 30,31 2 *", "never fires"),
        ("0 0 31 2,4,6,9,11 *", "never fires"),
    ],
)
def test_invalid_cron_is_refused_naming_the_problem(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match="cron") as error:
        CronSchedule(expression)
    assert message in str(error.value)


def test_cron_expression_must_be_a_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        CronSchedule(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "utc", "", " UTC", "/etc/localtime", "../x"])
def test_unknown_timezone_is_refused_naming_it(zone: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        CronSchedule("0 0 * * *", zone)


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(seconds=-1)])
def test_non_positive_interval_is_refused(interval: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        IntervalSchedule(interval)


def test_interval_must_be_a_timedelta() -> None:
    with pytest.raises(ValueError, match="timedelta"):
        IntervalSchedule(12)  # type: ignore[arg-type]


def test_naive_execute_at_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        OnceSchedule(datetime(2030, 1, 1, 12))


def test_naive_instants_are_refused_everywhere() -> None:
    naive = datetime(2030, 1, 1)
    with pytest.raises(ValueError, match="aware"):
        CronSchedule("* * * * *").next_after(naive)
    with pytest.raises(ValueError, match="aware"):
        IntervalSchedule(timedelta(seconds=1)).next_run(naive, utc(2030, 1, 1), catch_up=False)
    with pytest.raises(ValueError, match="aware"):
        CronSchedule("* * * * *").next_run(utc(2030, 1, 1), naive, catch_up=False)


# --- time zones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "offset"),
    [
        ("UTC", timedelta(0)),
        ("UTC+12", timedelta(hours=12)),  # dateutil's reading: ahead of UTC
        ("UTC-5", timedelta(hours=-5)),
        ("Etc/GMT-12", timedelta(hours=12)),  # POSIX reading, as in the tz database
        ("Asia/Kolkata", timedelta(hours=5, minutes=30)),
    ],
)
def test_parse_timezone_reads_names_and_offsets(zone: str, offset: timedelta) -> None:
    assert parse_timezone(zone).utcoffset(datetime(2030, 1, 15)) == offset


def test_cron_in_utc_plus_12_runs_at_local_wall_time() -> None:
    s = CronSchedule("0 9 * * *", "UTC+12")
    assert s.next_after(utc(2030, 1, 1)) == utc(2030, 1, 1, 21)


def test_cron_in_a_half_hour_zone_runs_at_local_wall_time() -> None:
    s = CronSchedule("0 9 * * *", "Asia/Kolkata")
    assert s.next_after(utc(2030, 1, 1)) == utc(2030, 1, 1, 3, 30)


def test_dst_rules_apply_after_2037() -> None:
    s = CronSchedule("0 12 * * *", "America/New_York")
    assert s.next_after(utc(2050, 7, 1)) == utc(2050, 7, 1, 16)  # EDT, not EST
    assert s.next_after(utc(2050, 1, 1)) == utc(2050, 1, 1, 17)


# --- DST ---------------------------------------------------------------------------------------
# 2026: New York springs forward 8 March 02:00 EST -> 03:00 EDT and falls back 1 November
# 02:00 EDT -> 01:00 EST. Dublin springs forward 29 March 01:00 GMT -> 02:00 IST and falls back
# 25 October 02:00 IST -> 01:00 GMT.


def local_days(zone: str, first: tuple[int, int, int], days: int) -> tuple[datetime, datetime]:
    """From local midnight of ``first`` to local midnight ``days`` later, in UTC."""
    start = datetime(*first, tzinfo=parse_timezone(zone))
    return start.astimezone(UTC), (start + timedelta(days=days)).astimezone(UTC)


# Five local days, the change on the third.
DST_DAYS = {
    ("America/New_York", "spring"): local_days("America/New_York", (2026, 3, 6), 5),
    ("America/New_York", "fall"): local_days("America/New_York", (2026, 10, 30), 5),
    ("Europe/Dublin", "spring"): local_days("Europe/Dublin", (2026, 3, 27), 5),
    ("Europe/Dublin", "fall"): local_days("Europe/Dublin", (2026, 10, 23), 5),
}


@pytest.mark.parametrize("expression", ["30 2 * * *", "30 1 * * *", "0 2 * * *", "0 1 * * *"])
@pytest.mark.parametrize(("zone", "change"), list(DST_DAYS))
def test_daily_cron_runs_exactly_once_per_local_day_across_dst(
    expression: str, zone: str, change: str
) -> None:
    s = CronSchedule(expression, zone)
    start, end = DST_DAYS[zone, change]
    runs = occurrences(s, start, end - timedelta(microseconds=1))
    days = [r.astimezone(parse_timezone(zone)).date() for r in runs]
    assert len(days) == len(set(days)) == 5


@pytest.mark.parametrize(
    ("expression", "zone", "expected"),
    [
        # The wall time does not exist: the run moves to the first instant after the gap.
        ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 7)),  # 03:00 EDT
        ("0 2 * * *", "America/New_York", utc(2026, 3, 8, 7)),  # 03:00 EDT
        ("30 1 * * *", "Europe/Dublin", utc(2026, 3, 29, 1)),  # 02:00 IST
        # Untouched by the change.
        ("30 1 * * *", "America/New_York", utc(2026, 3, 8, 6, 30)),  # 01:30 EST
        ("30 2 * * *", "Europe/Dublin", utc(2026, 3, 29, 1, 30)),  # 02:30 IST
    ],
)
def test_spring_forward_wall_time_in_the_gap_runs_once_at_the_gap_end(
    expression: str, zone: str, expected: datetime
) -> None:
    s = CronSchedule(expression, zone)
    day_before = expected - timedelta(hours=20)
    assert s.next_after(day_before) == expected


@pytest.mark.parametrize(
    ("zone", "first_pass"),
    [
        ("America/New_York", utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not 01:30 EST at 06:30Z
        ("Europe/Dublin", utc(2026, 10, 25, 0, 30)),  # 01:30 IST, not 01:30 GMT at 01:30Z
    ],
)
def test_fall_back_repeated_wall_time_runs_once_at_its_first_occurrence(
    zone: str, first_pass: datetime
) -> None:
    s = CronSchedule("30 1 * * *", zone)
    assert s.next_after(first_pass - timedelta(hours=12)) == first_pass
    next_day = s.next_after(first_pass)
    assert next_day is not None
    assert next_day - first_pass > timedelta(hours=24)
    # Asked from inside the repeated hour (second pass), it goes to the next day too.
    assert s.next_after(first_pass + timedelta(hours=1)) == s.next_after(first_pass)


def test_fixed_hour_cron_runs_only_in_the_first_pass_of_the_repeated_hour() -> None:
    s = CronSchedule("*/15 1 * * *", "America/New_York")
    runs = occurrences(s, utc(2026, 11, 1), utc(2026, 11, 2))
    assert [local(s, r) for r in runs] == [
        "11-01 01:00:00 EDT",
        "11-01 01:15:00 EDT",
        "11-01 01:30:00 EDT",
        "11-01 01:45:00 EDT",
    ]


@pytest.mark.parametrize(
    ("zone", "start"),
    [("America/New_York", utc(2026, 11, 1, 3)), ("Europe/Dublin", utc(2026, 10, 24, 22))],
)
def test_hourly_cron_runs_once_per_real_hour_across_fall_back(zone: str, start: datetime) -> None:
    s = CronSchedule("0 * * * *", zone)
    runs = occurrences(s, start, start + timedelta(hours=5))
    assert runs == [start + timedelta(hours=h) for h in range(1, 6)]
    walls = [local(s, r)[6:11] for r in runs]
    assert walls.count("01:00") == 2  # 01:00 summer time, then 01:00 standard time


@pytest.mark.parametrize(
    ("zone", "start", "gap_end"),
    [
        ("America/New_York", utc(2026, 3, 8, 4), utc(2026, 3, 8, 7)),
        ("Europe/Dublin", utc(2026, 3, 28, 22), utc(2026, 3, 29, 1)),
    ],
)
def test_hourly_cron_runs_once_per_real_hour_across_spring_forward(
    zone: str, start: datetime, gap_end: datetime
) -> None:
    s = CronSchedule("0 * * * *", zone)
    runs = occurrences(s, start, start + timedelta(hours=6))
    # The skipped hour's slot coalesces with the slot at the gap's end: one run per real hour.
    assert runs == [start + timedelta(hours=h) for h in range(1, 7)]
    assert gap_end in runs


@pytest.mark.parametrize(
    ("expression", "step"),
    [("* * * * *", timedelta(minutes=1)), ("* * * * * */20", timedelta(seconds=20))],
)
@pytest.mark.parametrize(("zone", "change"), list(DST_DAYS))
def test_frequent_cron_is_strictly_increasing_without_gaps_across_dst(
    expression: str, step: timedelta, zone: str, change: str
) -> None:
    s = CronSchedule(expression, zone)
    start, end = DST_DAYS[zone, change]
    transition = _transition(zone, start, end)
    runs = occurrences(s, transition - timedelta(hours=2), transition + timedelta(hours=2))
    gaps = {b - a for a, b in itertools.pairwise(runs)}
    assert gaps == {step}
    assert len(runs) == timedelta(hours=4) // step


def _transition(zone: str, start: datetime, end: datetime) -> datetime:
    tz = parse_timezone(zone)
    t = start
    while t.astimezone(tz).utcoffset() == start.astimezone(tz).utcoffset():
        t += timedelta(minutes=30)
        assert t < end
    return t


def test_cron_in_a_zone_with_a_half_hour_dst_change_runs_at_the_gap_end() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 4 October 2026.
    s = CronSchedule("15 2 * * *", "Australia/Lord_Howe")
    run = s.next_after(utc(2026, 10, 3, 12))
    assert run == utc(2026, 10, 3, 15, 30)
    assert local(s, run) == "10-04 02:30:00 +11"


# --- the missed-run policy ---------------------------------------------------------------------


def test_catch_up_replays_the_next_missed_occurrence() -> None:
    s = CronSchedule("0 * * * *")
    assert s.next_run(utc(2030, 1, 1, 0), utc(2030, 1, 2, 7, 30), catch_up=True) == utc(
        2030, 1, 1, 1
    )


def test_without_catch_up_missed_runs_coalesce_and_the_schedule_continues_from_now() -> None:
    s = CronSchedule("0 * * * *")
    assert s.next_run(utc(2030, 1, 1, 0), utc(2030, 1, 2, 7, 30), catch_up=False) == utc(
        2030, 1, 2, 8
    )


def test_without_catch_up_a_run_committed_early_still_moves_past_its_own_slot() -> None:
    s = CronSchedule("0 * * * *")
    # Committed before its scheduled time (a clock a little behind): still strictly later.
    assert s.next_run(utc(2030, 1, 1, 5), utc(2030, 1, 1, 4, 59), catch_up=False) == utc(
        2030, 1, 1, 6
    )


def test_coalescing_a_year_of_missed_per_second_runs_costs_one_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = CronSchedule("* * * * * *", "Europe/Dublin")
    steps = []
    real_get_next = croniter.croniter.get_next

    def counting(self: croniter.croniter, *args: Any, **kwargs: Any) -> Any:
        steps.append(1)
        return real_get_next(self, *args, **kwargs)

    monkeypatch.setattr(croniter.croniter, "get_next", counting)
    now = utc(2030, 6, 1, 12, 0, 0, 500000)
    assert s.next_run(now - timedelta(days=365), now, catch_up=False) == utc(2030, 6, 1, 12, 0, 1)
    assert len(steps) == 1


def test_interval_keeps_its_phase_when_runs_were_missed() -> None:
    s = IntervalSchedule(timedelta(seconds=12))
    scheduled = utc(2030, 1, 1, 0, 0, 0)
    assert s.next_run(scheduled, utc(2030, 1, 1, 0, 1, 0), catch_up=False) == utc(
        2030, 1, 1, 0, 1, 12
    )
    # Exactly on a slot: the next one, never `now` itself.
    assert s.next_run(scheduled, utc(2030, 1, 1, 0, 1, 12), catch_up=False) == utc(
        2030, 1, 1, 0, 1, 24
    )


def test_interval_of_one_second_missed_for_a_year_is_computed_directly() -> None:
    s = IntervalSchedule(timedelta(seconds=1))
    scheduled = utc(2029, 1, 1, 0, 0, 0, 250000)
    now = utc(2030, 1, 1, 0, 0, 0)
    assert s.next_run(scheduled, now, catch_up=False) == utc(2030, 1, 1, 0, 0, 0, 250000)


def test_interval_catch_up_replays_one_interval_at_a_time() -> None:
    s = IntervalSchedule(timedelta(minutes=5))
    assert s.next_run(utc(2030, 1, 1), utc(2030, 1, 2), catch_up=True) == utc(2030, 1, 1, 0, 5)


def test_interval_committed_before_its_slot_runs_one_interval_later() -> None:
    s = IntervalSchedule(timedelta(minutes=5))
    assert s.next_run(utc(2030, 1, 1, 1), utc(2030, 1, 1, 0, 59), catch_up=False) == utc(
        2030, 1, 1, 1, 5
    )


def test_first_runs() -> None:
    now = utc(2030, 1, 1, 10, 0, 30)
    assert CronSchedule("0 * * * *").first_run(now) == utc(2030, 1, 1, 11)
    assert IntervalSchedule(timedelta(seconds=12)).first_run(now) == now + timedelta(seconds=12)
    assert OnceSchedule(utc(2030, 2, 1)).first_run(now) == utc(2030, 2, 1)


def test_overdue_once_off_runs_immediately_and_only_once() -> None:
    s = OnceSchedule(utc(2020, 1, 1))
    now = utc(2030, 1, 1)
    assert s.first_run(now) == utc(2020, 1, 1)
    assert s.next_after(now) is None
    assert s.next_run(utc(2020, 1, 1), now, catch_up=False) is None
    assert s.next_run(utc(2020, 1, 1), now, catch_up=True) is None


def test_once_off_is_stored_in_utc() -> None:
    dublin_summer = datetime(2030, 7, 1, 12, tzinfo=parse_timezone("Europe/Dublin"))
    s = OnceSchedule(dublin_summer)
    assert s.execute_at == utc(2030, 7, 1, 11)
    assert s.execute_at.tzinfo is UTC
    assert s == OnceSchedule(utc(2030, 7, 1, 11))


def test_results_are_utc() -> None:
    after = datetime(2030, 1, 1, tzinfo=parse_timezone("Asia/Kolkata"))
    for s in (CronSchedule("0 9 * * *", "Europe/Dublin"), IntervalSchedule(timedelta(hours=1))):
        result = s.next_after(after)
        assert result is not None
        assert result.tzinfo is UTC


# --- specs and descriptions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "spec"),
    [
        (
            CronSchedule("*/10 * * * * *"),
            {"kind": "cron", "expression": "*/10 * * * * *", "timezone": None},
        ),
        (
            CronSchedule("0 12 * * *", "Europe/Dublin"),
            {"kind": "cron", "expression": "0 12 * * *", "timezone": "Europe/Dublin"},
        ),
        (IntervalSchedule(timedelta(seconds=12)), {"kind": "interval", "seconds": 12.0}),
        (IntervalSchedule(timedelta(microseconds=1500)), {"kind": "interval", "seconds": 0.0015}),
        (
            OnceSchedule(utc(2030, 1, 2, 3, 4, 5)),
            {"kind": "once", "at": "2030-01-02T03:04:05+00:00"},
        ),
    ],
)
def test_spec_round_trips_through_json(s: Schedule, spec: dict[str, Any]) -> None:
    assert s.to_spec() == spec
    assert schedule_from_spec(json.loads(json.dumps(s.to_spec()))) == s


def test_schedules_are_hashable_values() -> None:
    assert len({CronSchedule("0 0 * * *"), CronSchedule("0  0 * * *")}) == 1
    assert CronSchedule("0 0 * * *") != CronSchedule("0 0 * * *", "UTC")
    assert IntervalSchedule(timedelta(seconds=60)) == IntervalSchedule(timedelta(minutes=1))


def test_interval_spec_accepts_an_integer_or_decimal_number_of_seconds() -> None:
    expected = IntervalSchedule(timedelta(seconds=12))
    assert schedule_from_spec({"kind": "interval", "seconds": 12}) == expected
    assert schedule_from_spec({"kind": "interval", "seconds": Decimal("12.0")}) == expected


def test_once_spec_accepts_a_trailing_z() -> None:
    assert schedule_from_spec({"kind": "once", "at": "2030-01-01T00:00:00Z"}) == OnceSchedule(
        utc(2030, 1, 1)
    )


@pytest.mark.parametrize(
    "spec",
    [
        None,
        "cron",
        {},
        {"kind": "weekly"},
        {"kind": "cron"},
        {"kind": "cron", "expression": 5},
        {"kind": "cron", "expression": "0 0 30 2 *", "timezone": None},
        {"kind": "cron", "expression": "* * * * *", "timezone": 3},
        {"kind": "cron", "expression": "* * * * *", "timezone": "Nowhere/Town"},
        {"kind": "interval"},
        {"kind": "interval", "seconds": "12"},
        {"kind": "interval", "seconds": True},
        {"kind": "interval", "seconds": 0},
        {"kind": "interval", "seconds": float("nan")},
        {"kind": "interval", "seconds": 1e300},
        {"kind": "once"},
        {"kind": "once", "at": "tomorrow"},
        {"kind": "once", "at": "2030-01-01T00:00:00"},
        {"kind": "celery", "class": "celery.schedules.solar", "args": ["sunrise", 53, -6]},
    ],
)
def test_malformed_spec_is_refused(spec: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every malformation is a ValueError
        schedule_from_spec(spec)


@pytest.mark.parametrize(
    ("spec", "stored"),
    [
        (
            {"kind": "cron", "expression": "61 * * * *", "timezone": "Nowhere/Town"},
            StoredSpec("cron", expression="61 * * * *", timezone="Nowhere/Town"),
        ),
        (
            {"kind": "interval", "seconds": Decimal("12.5")},
            StoredSpec("interval", interval=timedelta(seconds=12.5)),
        ),
        (
            {"kind": "once", "at": "2030-01-01T00:00:00Z"},
            StoredSpec("once", execute_at=utc(2030, 1, 1)),
        ),
        ({"kind": "celery", "class": "celery.schedules.solar"}, StoredSpec("celery")),
        ({"kind": 5}, StoredSpec(None)),
    ],
)
def test_read_spec_reads_the_stored_fields_without_validating_the_schedule(
    spec: dict[str, Any], stored: StoredSpec
) -> None:
    assert read_spec(spec) == stored


def test_read_spec_refuses_a_field_of_the_wrong_type_like_schedule_from_spec() -> None:
    spec = {"kind": "interval", "seconds": "12"}
    with pytest.raises(ValueError, match="interval spec needs a number of 'seconds'"):
        read_spec(spec)
    with pytest.raises(ValueError, match="interval spec needs a number of 'seconds'"):
        schedule_from_spec(spec)


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ({"kind": "cron", "expression": "61 * * * *", "timezone": None}, ("61 * * * *", None)),
        ({"kind": "interval", "seconds": 60.0}, (None, timedelta(minutes=1))),
        ({"kind": "interval", "seconds": "sixty"}, (None, None)),
        ({"kind": "nonsense"}, (None, None)),
    ],
)
def test_a_task_state_shows_what_is_stored_even_for_a_record_to_quarantine(
    spec: dict[str, Any], fields: tuple[Any, Any]
) -> None:
    record = InstanceRecord(InstanceKey("t", 0, "a"), utc(2030, 1, 1), spec, {})

    state = TaskState.from_record(record)

    assert (state.schedule, state.interval) == fields


def test_descriptions() -> None:
    assert CronSchedule("*/10 * * * * *").description == "cron '*/10 * * * * *' (UTC)"
    assert (
        CronSchedule("0 12 * * *", "Europe/Dublin").description
        == "cron '0 12 * * *' (Europe/Dublin)"
    )
    assert IntervalSchedule(timedelta(seconds=12)).description == "every 0:00:12"
    assert OnceSchedule(utc(2030, 1, 1)).description == "once at 2030-01-01T00:00:00+00:00"


# --- Celery schedule objects -------------------------------------------------------------------


def test_crontab_becomes_cron_in_the_apps_timezone(celery_app: Celery) -> None:
    celery_app.conf.timezone = "Europe/Dublin"
    converted = from_celery(crontab(minute=30, hour=9), celery_app)
    assert converted == CronSchedule("30 9 * * *", "Europe/Dublin")


def test_crontab_fields_convert_to_cron_syntax(celery_app: Celery) -> None:
    converted = from_celery(
        crontab(minute="*/15", hour="9-17", day_of_week="mon-fri", month_of_year="1,4,7,10"),
        celery_app,
    )
    assert converted == CronSchedule("*/15 9-17 * */3 1-5", "UTC")
    converted = from_celery(crontab(minute="0,1,2,7", hour="1,3", day_of_month="2-4,9"), celery_app)
    assert converted == CronSchedule("0-2,7 1,3 2-4,9 * *", "UTC")


def test_crontab_sunday_is_day_zero(celery_app: Celery) -> None:
    converted = from_celery(crontab(minute=0, hour=0, day_of_week="sun"), celery_app)
    assert converted == CronSchedule("0 0 * * 0", "UTC")
    assert converted.next_after(utc(2030, 1, 1)) == utc(2030, 1, 6)  # a Sunday


def test_crontab_on_utc_app_without_timezone_is_utc(celery_app: Celery) -> None:
    celery_app.conf.enable_utc = True
    assert from_celery(crontab(minute=0), celery_app) == CronSchedule("0 * * * *", "UTC")


def test_crontab_on_local_time_without_timezone_is_refused(celery_app: Celery) -> None:
    celery_app.conf.enable_utc = False
    with pytest.raises(ValueError, match="timezone"):
        from_celery(crontab(minute=0), celery_app)


def test_crontab_own_timezone_wins_over_the_apps(celery_app: Celery) -> None:
    celery_app.conf.timezone = "Europe/Dublin"
    own = crontab(minute=0, hour=9)
    own.tz = parse_timezone("America/New_York")
    assert from_celery(own, celery_app) == CronSchedule("0 9 * * *", "America/New_York")


def test_crontab_bound_to_its_own_app_uses_that_apps_timezone(celery_app: Celery) -> None:
    celery_app.conf.timezone = "Asia/Kolkata"
    assert from_celery(crontab(minute=0, hour=9, app=celery_app)) == CronSchedule(
        "0 9 * * *", "Asia/Kolkata"
    )


def test_crontab_restricting_both_day_fields_keeps_celerys_and_meaning(celery_app: Celery) -> None:
    first_monday = crontab(minute=0, hour=9, day_of_month="1-7", day_of_week="mon", app=celery_app)
    converted = from_celery(first_monday, celery_app)
    assert isinstance(converted, CelerySchedule)
    runs = occurrences(converted, utc(2030, 1, 1), utc(2030, 4, 1))
    assert runs == [utc(2030, 1, 7, 9), utc(2030, 2, 4, 9), utc(2030, 3, 4, 9)]


def test_celery_interval_timedelta_and_seconds_become_intervals() -> None:
    assert from_celery(schedule(run_every=timedelta(seconds=30))) == IntervalSchedule(
        timedelta(seconds=30)
    )
    assert from_celery(timedelta(minutes=2)) == IntervalSchedule(timedelta(minutes=2))
    assert from_celery(12) == IntervalSchedule(timedelta(seconds=12))
    assert from_celery(1.5) == IntervalSchedule(timedelta(seconds=1.5))


def test_a_schedule_passes_through_from_celery() -> None:
    s = CronSchedule("0 0 * * *")
    assert from_celery(s) is s


@pytest.mark.parametrize(
    ("obj", "type_name"),
    [("*/5 * * * *", "str"), (True, "bool"), (object(), "object"), (None, "NoneType")],
)
def test_anything_else_is_refused_naming_its_type(obj: object, type_name: str) -> None:
    with pytest.raises(ValueError, match=type_name):
        from_celery(obj)


@pytest.mark.parametrize("seconds", [0, -5, float("inf"), float("nan")])
def test_bad_numbers_of_seconds_are_refused(seconds: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message depends on the number
        from_celery(seconds)


class EveryTenMinutes(BaseSchedule):  # type: ignore[misc]
    """A hand-written Celery schedule: due on every ten-minute boundary."""

    def _next(self, last_run_at: datetime) -> datetime:
        base = last_run_at.replace(second=0, microsecond=0)
        return base - timedelta(minutes=base.minute % 10) + timedelta(minutes=10)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        now: datetime = self.now()
        return self._next(last_run_at) - now

    def is_due(self, last_run_at: datetime) -> schedstate:
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        return schedstate(remaining <= 0, max(remaining, 0) or 600.0)

    def __repr__(self) -> str:
        return "<every ten minutes>"


class WeekdayMornings(EveryTenMinutes):
    """Estimates the next 09:00 but is only due on weekdays, asking to be checked again otherwise
    (like solar when the sun does not rise)."""

    def _next(self, last_run_at: datetime) -> datetime:
        nine = last_run_at.replace(hour=9, minute=0, second=0, microsecond=0)
        return nine if nine > last_run_at else nine + timedelta(days=1)

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        if remaining <= 0 and now.weekday() < 5:
            return schedstate(True, 86400.0)
        return schedstate(False, max(remaining, 0) or 86400.0)

    def __repr__(self) -> str:
        return "<weekday mornings>"


def test_custom_celery_schedule_is_wrapped_and_uses_its_own_arithmetic() -> None:
    wrapped = from_celery(EveryTenMinutes())
    assert isinstance(wrapped, CelerySchedule)
    assert wrapped.next_after(utc(2030, 1, 1, 12, 3, 7)) == utc(2030, 1, 1, 12, 10)
    assert wrapped.next_after(utc(2030, 1, 1, 12, 10)) == utc(2030, 1, 1, 12, 20)
    assert wrapped.first_run(utc(2030, 1, 1, 12, 10)) == utc(2030, 1, 1, 12, 20)


def test_missed_runs_of_a_celery_schedule_coalesce_to_the_next_after_now() -> None:
    wrapped = CelerySchedule(EveryTenMinutes())
    next_run = wrapped.next_run(utc(2030, 1, 1), utc(2030, 1, 5, 7, 31), catch_up=False)
    assert next_run == utc(2030, 1, 5, 7, 40)
    assert wrapped.next_run(utc(2030, 1, 1), utc(2030, 1, 5), catch_up=True) == utc(
        2030, 1, 1, 0, 10
    )


def test_celery_schedule_not_due_at_its_estimate_is_checked_again_when_it_asks() -> None:
    wrapped = CelerySchedule(WeekdayMornings())
    friday_morning = utc(2030, 1, 4, 9)
    assert wrapped.next_after(friday_morning) == utc(2030, 1, 7, 9)  # Monday, not Saturday


def test_celery_schedule_clock_is_restored_after_use() -> None:
    obj = EveryTenMinutes(nowfun=lambda: utc(2000, 1, 1))
    CelerySchedule(obj).next_after(utc(2030, 1, 1))
    assert obj.now() == utc(2000, 1, 1)


def test_celery_schedule_spec_names_the_object_and_cannot_be_rebuilt() -> None:
    wrapped = CelerySchedule(EveryTenMinutes())
    assert wrapped.to_spec() == {
        "kind": "celery",
        "class": f"{__name__}.EveryTenMinutes",
        "state": {},
    }
    assert json.loads(json.dumps(wrapped.to_spec())) == wrapped.to_spec()
    assert wrapped == CelerySchedule(EveryTenMinutes())
    assert wrapped.description == "celery <every ten minutes>"
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        schedule_from_spec(wrapped.to_spec())


def test_celery_schedule_requires_the_celery_schedule_methods() -> None:
    with pytest.raises(ValueError, match="not a Celery schedule"):
        CelerySchedule(object())


def test_solar_is_wrapped(celery_app: Celery) -> None:
    pytest.importorskip("ephem", reason="celery's solar schedule needs the ephem package")
    sunrise = solar("sunrise", 53.35, -6.26, app=celery_app)
    wrapped = from_celery(sunrise, celery_app)
    assert isinstance(wrapped, CelerySchedule)
    run = wrapped.next_after(utc(2030, 6, 21))
    assert run is not None
    assert utc(2030, 6, 21, 3) < run < utc(2030, 6, 21, 5)  # Dublin's midsummer sunrise


def test_solar_is_wrapped_even_without_building_one() -> None:
    # solar() needs ephem; an instance made without __init__ still shows the conversion path.
    sunrise = object.__new__(solar)
    BaseSchedule.__init__(sunrise)
    sunrise.event, sunrise.lat, sunrise.lon = "sunrise", 53.35, -6.26
    wrapped = from_celery(sunrise)
    assert isinstance(wrapped, CelerySchedule)
    assert wrapped.to_spec() == {
        "kind": "celery",
        "class": "celery.schedules.solar",
        "args": ["sunrise", 53.35, -6.26],
    }


class OnTheHourOnly(schedule):  # type: ignore[misc]
    """A celery interval whose subclass replaces the arithmetic: due on whole hours only."""

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        now: datetime = self.now()
        return last_run_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - now

    def is_due(self, last_run_at: datetime) -> schedstate:
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        return schedstate(remaining <= 0, max(remaining, 0) or 3600.0)


def test_subclass_replacing_celery_arithmetic_is_wrapped_not_converted() -> None:
    wrapped = from_celery(OnTheHourOnly(run_every=timedelta(minutes=1)))
    assert isinstance(wrapped, CelerySchedule)
    assert wrapped.next_after(utc(2030, 1, 1, 10, 20)) == utc(2030, 1, 1, 11)
