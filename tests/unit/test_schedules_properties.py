"""Properties of next-run arithmetic over random cron expressions, time zones and instants.

The instants are drawn both uniformly from 2000-2100 and close to each zone's DST changes, where
the interesting cases are. A brute-force reference (every wall time of the expression near the
instant, mapped to real instants by the documented DST rules) checks cron results exactly.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone, tzinfo

from croniter import croniter
from dateutil import tz as dateutil_tz
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from celery_pyncette.schedules import (
    CronSchedule,
    IntervalSchedule,
    OnceSchedule,
    parse_timezone,
    schedule_from_spec,
)

UTC = timezone.utc
FAST = settings(max_examples=200, deadline=None)

ZONES = [
    "UTC",
    "UTC+12",
    "Europe/Dublin",  # negative DST in the tz database
    "America/New_York",
    "America/St_Johns",  # -03:30 / -02:30
    "Asia/Kolkata",  # +05:30, no DST
    "Australia/Adelaide",  # +09:30 / +10:30, southern hemisphere
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Auckland",
    "Pacific/Chatham",  # +12:45 / +13:45
]


# --- strategies --------------------------------------------------------------------------------


def cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    bounds = st.tuples(value, value).map(sorted)
    step = st.integers(1, high - low + 1)
    part = st.one_of(
        value.map(str),
        bounds.map(lambda b: f"{b[0]}-{b[1]}"),
        step.map(lambda n: f"*/{n}"),
        st.tuples(bounds, step).map(lambda bs: f"{bs[0][0]}-{bs[0][1]}/{bs[1]}"),
    )
    return st.one_of(st.just("*"), st.lists(part, min_size=1, max_size=3).map(",".join))


DAY_OF_MONTH = st.one_of(cron_field(1, 31), st.just("L"))
DAY_OF_WEEK = st.one_of(
    cron_field(0, 6),
    st.tuples(st.integers(0, 6), st.integers(1, 4)).map(lambda dn: f"{dn[0]}#{dn[1]}"),
)


@st.composite
def cron_expressions(draw: st.DrawFn, seconds: bool | None = None) -> str:
    fields = [
        draw(cron_field(0, 59)),
        draw(cron_field(0, 23)),
        draw(DAY_OF_MONTH),
        draw(cron_field(1, 12)),
        draw(DAY_OF_WEEK),
    ]
    if seconds is None:
        seconds = draw(st.booleans())
    if seconds:
        fields.append(draw(cron_field(0, 59)))
    return " ".join(fields)


@functools.cache
def transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """The instants in ``year`` where ``zone`` changes its UTC offset (to the minute)."""
    tz = parse_timezone(zone)
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(days=1)
        if day.astimezone(tz).utcoffset() != following.astimezone(tz).utcoffset():
            low, high = day, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) // 2
                if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        day = following
    return tuple(found)


def offset_at(instant: datetime, tz: tzinfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


@st.composite
def instants(draw: st.DrawFn, zone: str) -> datetime:
    """Uniform over 2000-2100, or within four hours of one of the zone's DST changes."""
    if draw(st.booleans()):
        changes = transitions(zone, draw(st.integers(2000, 2099)))
        if changes:
            change = draw(st.sampled_from(changes))
            offset = timedelta(
                seconds=draw(st.integers(-4 * 3600, 4 * 3600)),
                microseconds=draw(st.sampled_from([0, 0, 0, 1, 500_000, 999_999])),
            )
            return change + offset
    return draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)))


def cron_or_reject(expression: str, zone: str) -> CronSchedule:
    try:
        return CronSchedule(expression, zone)
    except ValueError:
        assume(False)  # an expression that never fires (the 31st of a 30-day month, say)
        raise


# --- the reference -----------------------------------------------------------------------------


def reference_next_after(expression: str, zone: str, after: datetime) -> datetime | None:
    """The documented rules, by brute force over every wall time near ``after``.

    A wall time in a gap runs at the gap's end; a repeated one at its first pass, and at its second
    too when the hour field is ``*``; then the earliest run after ``after`` wins.
    """
    tz = parse_timezone(zone)
    every_hour = croniter.expand(expression)[0][1] == ["*"]
    wall_after = after.astimezone(tz).replace(tzinfo=None)
    walls = croniter(expression, wall_after - timedelta(hours=3), ret_type=datetime)
    candidates = []
    while True:
        wall = walls.get_next()
        first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if not dateutil_tz.datetime_exists(wall, tz):
            before_gap = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
            gap_end = before_gap
            while gap_end.astimezone(tz).utcoffset() == before_gap.astimezone(tz).utcoffset():
                gap_end += timedelta(minutes=1)
            candidates.append(gap_end)
        else:
            candidates.append(first)
            if every_hour and dateutil_tz.datetime_ambiguous(wall, tz):
                candidates.append(wall.replace(tzinfo=tz, fold=1).astimezone(UTC))
        if wall > wall_after + timedelta(hours=3):
            break
    later = [c for c in candidates if c > after]
    return min(later) if later else None


# --- cron properties ---------------------------------------------------------------------------


@FAST
@given(data=st.data(), expression=cron_expressions(), zone=st.sampled_from(ZONES))
def test_cron_next_after_is_a_later_utc_instant_matching_the_expression_in_local_time(
    data: st.DataObject, expression: str, zone: str
) -> None:
    s = cron_or_reject(expression, zone)
    after = data.draw(instants(zone))
    result = s.next_after(after)
    assert result is not None
    assert result > after
    assert result.tzinfo is UTC
    tz = parse_timezone(zone)
    local = result.astimezone(tz)
    wall = local.replace(tzinfo=None)
    assert dateutil_tz.datetime_exists(wall, tz)
    assert local.astimezone(UTC) == result
    if not croniter.match(s.expression, wall):
        # Only a run moved out of a DST gap may fall on a wall time the expression does not name:
        # it sits at the gap's end, and the expression's previous wall time lies in the gap.
        assert not dateutil_tz.datetime_exists(wall - timedelta(seconds=1), tz)
        previous = croniter(s.expression, wall, ret_type=datetime).get_prev()
        assert not dateutil_tz.datetime_exists(previous, tz)
    if local.fold == 1 and dateutil_tz.datetime_ambiguous(wall, tz):
        # The second pass of a repeated hour runs only for expressions firing every hour.
        assert croniter.expand(s.expression)[0][1] == ["*"]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), expression=cron_expressions(seconds=False), zone=st.sampled_from(ZONES))
def test_cron_next_after_equals_the_brute_force_reference(
    data: st.DataObject, expression: str, zone: str
) -> None:
    s = cron_or_reject(expression, zone)
    after = data.draw(instants(zone))
    assert s.next_after(after) == reference_next_after(s.expression, zone, after)


@settings(deadline=None)  # its time is the machine's load, not the code's
@given(data=st.data(), expression=cron_expressions(seconds=False), zone=st.sampled_from(ZONES))
def test_cron_next_after_does_not_depend_on_the_instants_asked_before(
    data: st.DataObject, expression: str, zone: str
) -> None:
    # One croniter per expression and thread is moved from instant to instant (schedules/_cron.py):
    # later, earlier and repeated instants in any order each get the reference answer.
    s = cron_or_reject(expression, zone)
    asked = data.draw(st.lists(instants(zone), min_size=2, max_size=6))
    for after in asked + asked[::-1]:
        assert s.next_after(after) == reference_next_after(s.expression, zone, after)


DST_ZONES = [z for z in ZONES if transitions(z, 2030)]


@st.composite
def near_dst_changes(draw: st.DrawFn) -> tuple[str, str, datetime]:
    """A zone, an instant within three hours of one of its DST changes, and a daily-ish cron whose
    hours are those around the change, so that its wall times land in the gap or the repeat."""
    zone = draw(st.sampled_from(DST_ZONES))
    change = draw(st.sampled_from(transitions(zone, draw(st.integers(2000, 2099)))))
    tz = parse_timezone(zone)
    # The change's wall time read with the offsets before and after it: the gap's or the
    # repeat's hours, which no instant's local time shows for a gap.
    offsets = {offset_at(change + timedelta(minutes=m), tz) for m in (-1, 0)}
    wall = change.replace(tzinfo=None)
    hours = sorted(
        {(wall + offset + timedelta(hours=h)).hour for offset in offsets for h in (-1, 0, 1)}
    )
    hour_field = draw(
        st.one_of(
            st.just("*"),
            st.lists(st.sampled_from(hours), min_size=1, max_size=3, unique=True).map(
                lambda hs: ",".join(map(str, sorted(hs)))
            ),
        )
    )
    minute_field = draw(
        st.one_of(st.sampled_from(["0", "30", "45", "59", "0,15,30,45", "*/7"]), cron_field(0, 59))
    )
    day_fields = draw(st.sampled_from(["* * *", "* * *", "* * 0", "1-15 * *"]))
    after = change + timedelta(
        seconds=draw(st.integers(-3 * 3600, 3 * 3600)),
        microseconds=draw(st.sampled_from([0, 0, 1, 999_999])),
    )
    return f"{minute_field} {hour_field} {day_fields}", zone, after


@settings(max_examples=200, deadline=None)
@given(case=near_dst_changes())
def test_cron_next_after_equals_the_brute_force_reference_near_dst_changes(
    case: tuple[str, str, datetime],
) -> None:
    expression, zone, after = case
    s = CronSchedule(expression, zone)
    assert s.next_after(after) == reference_next_after(s.expression, zone, after)


@FAST
@given(data=st.data(), expression=cron_expressions(), zone=st.sampled_from(ZONES))
def test_cron_next_run_without_catch_up_is_after_both_now_and_the_run(
    data: st.DataObject, expression: str, zone: str
) -> None:
    s = cron_or_reject(expression, zone)
    scheduled_at = data.draw(instants(zone))
    now = data.draw(instants(zone))
    result = s.next_run(scheduled_at, now, catch_up=False)
    assert result is not None
    assert result > now
    assert result > scheduled_at
    assert result == s.next_after(max(now, scheduled_at))
    assert s.next_run(scheduled_at, now, catch_up=True) == s.next_after(scheduled_at)


@FAST
@given(expression=cron_expressions(), zone=st.sampled_from([*ZONES, None]))
def test_cron_spec_round_trips(expression: str, zone: str | None) -> None:
    try:
        s = CronSchedule(expression, zone)
    except ValueError:
        assume(False)
        raise
    assert schedule_from_spec(s.to_spec()) == s


# --- interval and once-off properties ----------------------------------------------------------

INTERVALS = st.timedeltas(timedelta(milliseconds=1), timedelta(days=30))
MOMENTS = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@FAST
@given(interval=INTERVALS, scheduled_at=MOMENTS, now=MOMENTS)
def test_interval_next_run_keeps_the_phase_and_is_the_first_slot_after_now(
    interval: timedelta, scheduled_at: datetime, now: datetime
) -> None:
    result = IntervalSchedule(interval).next_run(scheduled_at, now, catch_up=False)
    assert result is not None
    steps, remainder = divmod(result - scheduled_at, interval)
    assert remainder == timedelta(0)
    assert steps >= 1
    assert result > now
    assert result - interval <= max(now, scheduled_at)


@FAST
@given(interval=INTERVALS, scheduled_at=MOMENTS, now=MOMENTS)
def test_interval_catch_up_is_one_interval_after_the_run(
    interval: timedelta, scheduled_at: datetime, now: datetime
) -> None:
    result = IntervalSchedule(interval).next_run(scheduled_at, now, catch_up=True)
    assert result == scheduled_at + interval


@FAST
@given(interval=INTERVALS)
def test_interval_spec_round_trips(interval: timedelta) -> None:
    s = IntervalSchedule(interval)
    assert schedule_from_spec(s.to_spec()) == s


@FAST
@given(
    at=st.datetimes(
        datetime(1970, 1, 1),
        datetime(2200, 1, 1),
        timezones=st.sampled_from([parse_timezone(z) for z in ZONES]),
    ),
    now=MOMENTS,
)
def test_once_off_runs_exactly_once_at_its_instant(at: datetime, now: datetime) -> None:
    s = OnceSchedule(at)
    # Compared in UTC: an aware datetime inside a repeated hour never equals one in another zone.
    assert s.first_run(now) == at.astimezone(UTC)
    assert s.next_after(now) is None
    assert s.next_run(at, now, catch_up=False) is None
    assert schedule_from_spec(s.to_spec()) == s
