"""Custom Celery schedules in beat_schedule: a restart keeps their next run, a change replaces it.

Each "beat start" is a fresh Celery app and Pyncette on the same SQLite file, with a freshly built
schedule object (another memory address), synced as beat does at start.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from celery import Celery
from celery.schedules import BaseSchedule, schedstate, solar

from celery_pyncette import ConfigurationError, Pyncette
from celery_pyncette._dispatch import sync_static
from celery_pyncette.schedules import CelerySchedule
from celery_pyncette.schedules._celery_spec import describe
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord
from tests.conftest import FakeClock


class EveryNMinutes(BaseSchedule):  # type: ignore[misc]
    """A custom schedule relative to its last run: ``minutes`` after it."""

    def __init__(self, minutes: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.minutes = minutes

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        now: datetime = self.now()
        return last_run_at + timedelta(minutes=self.minutes) - now

    def is_due(self, last_run_at: datetime) -> schedstate:
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        return schedstate(remaining <= 0, max(remaining, 0) or self.minutes * 60.0)


class HoldsACallback(EveryNMinutes):
    """Its definition includes a lambda: no stable description."""

    def __init__(self, minutes: int) -> None:
        super().__init__(minutes)
        self.on_due = lambda: None


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/beat.sqlite3"


@pytest.fixture
def started() -> Iterator[list[Pyncette]]:
    opened: list[Pyncette] = []
    yield opened
    for extension in opened:
        extension.close()
        extension.app.close()


def beat_start(url: str, started: list[Pyncette], schedule: object) -> Pyncette:
    app = Celery("spec", broker="memory://", set_as_current=False)
    app.conf.beat_schedule = {"custom": {"task": "proj.custom", "schedule": schedule}}
    extension = Pyncette(app, url=url)
    started.append(extension)
    sync_static(extension.runtime, extension.definitions(), extension.now())
    return extension


def record(extension: Pyncette) -> InstanceRecord:
    found = extension.store.get(InstanceKey("custom", 0, STATIC_INSTANCE))
    assert found is not None
    return found


def test_restarting_beat_keeps_the_next_run_and_a_live_lease(
    url: str, started: list[Pyncette], fake_clock: FakeClock
) -> None:
    first = beat_start(url, started, EveryNMinutes(30))
    scheduled = record(first).next_run
    fake_clock.now = scheduled
    (claimed,) = first.store.claim_due("custom", 0, scheduled, 1, timedelta(minutes=5), "beat-1")
    fake_clock.advance(minutes=1)

    for _ in range(3):  # beats restart more often than the schedule's period
        again = beat_start(url, started, EveryNMinutes(30))
        kept = record(again)
        assert kept.next_run == scheduled
        assert kept.lease == claimed.lease, "a restart must not clear the running occurrence"


def test_changing_the_schedule_in_code_replaces_its_record(
    url: str, started: list[Pyncette], fake_clock: FakeClock
) -> None:
    first = beat_start(url, started, EveryNMinutes(30))
    before = record(first)

    changed = beat_start(url, started, EveryNMinutes(45))

    after = record(changed)
    assert after.spec != before.spec
    assert after.next_run == fake_clock.now + timedelta(minutes=45)


def test_the_description_names_the_class_and_its_values_not_the_address() -> None:
    one, other = EveryNMinutes(30), EveryNMinutes(30)
    assert repr(one) != repr(other)  # "<...EveryNMinutes object at 0x...>"
    assert (
        describe(one)
        == describe(other)
        == {
            "kind": "celery",
            "class": f"{__name__}.EveryNMinutes",
            "state": {"minutes": 30},
        }
    )
    assert CelerySchedule(one) == CelerySchedule(other)
    assert hash(CelerySchedule(one)) == hash(CelerySchedule(other))
    assert CelerySchedule(one).description == 'celery <EveryNMinutes {"minutes": 30}>'


def test_solar_is_described_by_its_event_and_place() -> None:
    sunrise = object.__new__(solar)
    BaseSchedule.__init__(sunrise)
    sunrise.event, sunrise.lat, sunrise.lon = "sunrise", 53.35, -6.26
    assert describe(sunrise)["args"] == ["sunrise", 53.35, -6.26]


def test_a_schedule_without_a_stable_description_is_refused_at_start(
    url: str, started: list[Pyncette]
) -> None:
    with pytest.raises(ConfigurationError, match=r"beat_schedule\['custom'\].*on_due.*stably"):
        beat_start(url, started, HoldsACallback(5))


def test_a_schedule_class_defined_in_a_function_is_refused() -> None:
    class Local(EveryNMinutes):
        pass

    with pytest.raises(ValueError, match="defined inside a function"):
        CelerySchedule(Local(5))


def test_values_are_written_as_json_whatever_their_python_type() -> None:
    obj = EveryNMinutes(5)
    obj.window = timedelta(minutes=2)
    obj.since = datetime(2030, 1, 1, tzinfo=timezone.utc)
    obj.days = {3, 1, 2}
    spec = describe(obj)
    assert spec["state"] == {
        "days": [1, 2, 3],
        "minutes": 5,
        "since": {"at": "2030-01-01T00:00:00+00:00"},
        "window": {"seconds": 120.0},
    }
