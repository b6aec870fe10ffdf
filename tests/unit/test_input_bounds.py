"""Input gaps: machine-local zones, absurd durations, sub-millisecond intervals, bad namespaces.

Each is refused with a ValueError or ConfigurationError naming the problem, and nothing is written.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery import Celery
from click.testing import CliRunner
from dateutil import tz as dateutil_tz

from celery_pyncette import ConfigurationError, Context, Pyncette, schedules
from celery_pyncette._bounds import MAX_DURATION
from celery_pyncette._config import settings_from
from celery_pyncette.cli import pyncette as pyncette_group


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def nothing_stored(pyncette: Pyncette) -> bool:
    return pyncette.store.count_instances("hello", 0) == 0


# --- time zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["localtime", "posixrules"])
def test_the_machine_local_zone_is_refused(pyncette: Pyncette, hello: object, zone: str) -> None:
    with pytest.raises(ValueError, match="this machine's local zone"):
        pyncette.schedule_task(hello, "bill", schedule="0 9 * * *", timezone=zone)
    assert nothing_stored(pyncette)
    with pytest.raises(ValueError, match="this machine's local zone"):

        @pyncette.task(schedule="0 9 * * *", timezone=zone, name="daily")
        def daily(context: Context) -> None: ...


def test_a_name_dateutil_resolves_to_the_local_zone_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dateutil answers tzlocal() for a name equal to the machine's own abbreviation (time.tzname).
    monkeypatch.setattr(dateutil_tz, "gettz", lambda name: dateutil_tz.tzlocal())
    with pytest.raises(ValueError, match="'XYZ' is this machine's local zone"):
        schedules.parse_timezone("XYZ")


def test_portable_zones_are_still_accepted() -> None:
    for zone in ("UTC", "Europe/Dublin", "UTC+12", "EST5EDT,M3.2.0,M11.1.0"):
        assert schedules.parse_timezone(zone) is not None


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["lease_duration", "poll_interval"])
@pytest.mark.parametrize("value", [1e300, 1e12, "1e12", MAX_DURATION + timedelta(seconds=1)])
def test_absurd_durations_in_settings_are_a_configuration_error(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"pyncette_{key}: .* longer than the maximum"):
        settings_from({f"pyncette_{key}": value}, {})
    app = Celery("bounds", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match=key):
        Pyncette(app, **{key: value})


def test_the_maximum_duration_itself_is_accepted() -> None:
    settings = settings_from(
        {"pyncette_lease_duration": MAX_DURATION, "pyncette_delivery_timeout": MAX_DURATION}, {}
    )
    assert settings.lease_duration == settings.delivery_timeout == MAX_DURATION


def test_a_task_lease_longer_than_the_maximum_is_refused(pyncette: Pyncette) -> None:
    with pytest.raises(ValueError, match=r"lease_duration of .* longer than the maximum"):

        @pyncette.task(interval=timedelta(minutes=1), lease_duration=timedelta(days=10**5))
        def long_lease(context: Context) -> None: ...


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        (timedelta(microseconds=1), "at least 1 ms"),
        (timedelta(microseconds=999), "at least 1 ms"),
        (timedelta(days=10**6), "longer than the maximum"),
    ],
)
def test_intervals_outside_the_bounds_are_refused_unwritten(
    pyncette: Pyncette, hello: object, interval: timedelta, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pyncette.schedule_task(hello, "bill", interval=interval)
    assert nothing_stored(pyncette)


def test_a_one_millisecond_interval_is_accepted(pyncette: Pyncette, hello: object) -> None:
    state = pyncette.schedule_task(hello, "fast", interval=timedelta(milliseconds=1))
    assert state.interval == timedelta(milliseconds=1)


@pytest.mark.parametrize("seconds", [1e300, 1e12, 0.0000001, float("nan")])
def test_beat_schedule_seconds_outside_the_bounds_are_a_configuration_error(
    app: Celery, seconds: float
) -> None:
    app.conf.beat_schedule = {"tick": {"task": "x.tick", "schedule": seconds}}
    extension = Pyncette(app, url="memory://")
    with pytest.raises(ConfigurationError, match=r"beat_schedule\['tick'\]"):
        extension.definitions()


def test_scatter_over_an_absurd_window_is_refused(pyncette: Pyncette, hello: object) -> None:
    with pytest.raises(ValueError, match=r"over of .* longer than the maximum"):
        pyncette.scatter(hello, ["a", "b"], over=timedelta(days=10**5))
    assert nothing_stored(pyncette)


def test_the_cli_refuses_a_huge_interval_in_one_line(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    result = CliRunner().invoke(
        pyncette_group,
        ["schedule", "hello", "bill", "--interval", "1e300"],
        obj=SimpleNamespace(app=app),
    )
    assert result.exit_code == 1
    assert "interval of 1e+300 seconds is longer than the maximum" in result.output
    assert "OverflowError" not in result.output
    assert nothing_stored(pyncette)


# --- namespace ----------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["ok\n", "ok\r\n", " ok", "ok-1", ""])
def test_a_namespace_with_a_trailing_newline_or_other_junk_is_refused(namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="pyncette_namespace"):
        settings_from({"pyncette_namespace": namespace}, {})
