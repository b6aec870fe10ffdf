"""Poison isolation on beat's side and the worker's: a record whose schedule cannot be decoded
or computed is quarantined, logged once, and neither stops nor spins beat; its batch-mates and
the other tasks are still sent in the same tick. On the memory store and SQLite, the clock driven.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.schedules import BaseSchedule, schedstate

from celery_pyncette import Context, ExecutionMode, Pyncette
from celery_pyncette._dispatch import MAX_BATCHES_PER_PARTITION
from celery_pyncette.beat import Scheduler
from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.schedules import IntervalSchedule
from celery_pyncette.stores.base import STATIC_INSTANCE, ClaimedBatch, InstanceKey, InstanceRecord
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

NONSENSE = {"kind": "nonsense"}


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.sqlite3"


@pytest.fixture
def extension(app: Celery, url: str) -> Iterator[Pyncette]:
    pyncette = Pyncette(app, url=url, batch_size=5, poll_interval=1.0, lease_duration=30)
    yield pyncette
    pyncette.close()


@pytest.fixture
def beat(app: Celery, extension: Pyncette) -> Iterator[Any]:
    """Beat's scheduler, built on demand (after the tasks are declared); closed after the test
    (closing it closes the store, which a memory store does not survive)."""
    built: list[Scheduler] = []

    def start() -> Scheduler:
        built.append(Scheduler(app))
        return built[-1]

    yield start
    for scheduler in built:
        scheduler.close()


def hello_task(pyncette: Pyncette, **options: Any) -> Any:
    @pyncette.dynamic_task(name="hello", **options)
    def hello(context: Context) -> None: ...

    return hello


def sent(app: Celery) -> list[str]:
    """The instances (``None``: a static task's occurrence) of the messages waiting, sorted."""
    names = [m.headers["pyncette"]["instance"] or m.headers["task"] for m in take_waiting(app)]
    return sorted(names)


def write_garbage(pyncette: Pyncette, instance: str, due: datetime, spec: Any = None) -> None:
    """A stored record whose spec no schedule decodes from (as another version could write)."""
    record = InstanceRecord(InstanceKey("hello", 0, instance), due, spec or NONSENSE, {})
    pyncette.store.upsert(record, due, force=True)


def quarantine_warnings(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "celery_pyncette.quarantine" and repr(name) in r.getMessage()
    ]


def test_a_batch_of_unknown_kind_records_neither_spins_beat_nor_holds_up_the_healthy_ones(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hello = hello_task(extension)
    for name in ("good1", "good2", "good3"):
        extension.schedule_task(hello, name, interval=timedelta(seconds=1))
    bad = [f"bad{i}" for i in range(5)]
    for name in bad[:4]:  # due first: the first batch of 5 is all poison
        write_garbage(extension, name, fake_clock.now)
    write_garbage(extension, bad[4], fake_clock.now, {"kind": "cron", "expression": "61 * * * *"})
    fake_clock.advance(seconds=1)
    scheduler = beat()

    with caplog.at_level(logging.INFO, "celery_pyncette"):
        delays, ticks = [], []
        for _ in range(10):
            delays.append(scheduler.tick())
            ticks.append(sent(app))

    assert ticks[0] == ["good1", "good2", "good3"], "sent in the first tick, behind the poison"
    assert ticks[1:] == [[]] * 9
    assert all(delay > 0 for delay in delays), f"no backlog, no busy loop: {delays}"
    for name in bad:
        (warning,) = quarantine_warnings(caplog, name)
        assert ("61 * * * *" if name == bad[4] else "nonsense") in warning
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sorted(q.key.instance for q in extension.store.list_quarantined("hello")) == bad


def test_a_tick_that_meets_only_poison_up_to_its_batch_limit_is_not_a_backlog(
    fake_clock: FakeClock, app: Celery, extension: Pyncette, beat: Any
) -> None:
    hello = hello_task(extension)
    extension.schedule_task(hello, "good", interval=timedelta(seconds=1))
    bad = [f"bad{i:03}" for i in range(5 * MAX_BATCHES_PER_PARTITION + 5)]
    for name in bad:
        write_garbage(extension, name, fake_clock.now)
    fake_clock.advance(seconds=1)
    scheduler = beat()

    first = scheduler.tick()  # every batch it may claim is full of poison
    assert first > 0, "quarantined records alone are not a backlog"
    assert sent(app) == []
    scheduler.tick()
    assert sent(app) == ["good"]
    assert len(extension.store.list_quarantined("hello", limit=1000)) == len(bad)


def poisoning_claims(pyncette: Pyncette, monkeypatch: pytest.MonkeyPatch, poison: set[str]) -> None:
    """Make the store's claim meet ``poison`` as a SQL or Redis store meets rows it cannot decode:
    quarantined by the claim itself, reported in the batch, counted against its limit."""
    store = pyncette.store
    real_claim = store.claim

    def claim(task: str, partition: int, now: datetime, limit: int, *rest: Any) -> ClaimedBatch:
        quarantined = []
        for name in sorted(poison)[:limit]:
            key = InstanceKey(task, partition, name)
            if store.quarantine(key, None, "next_run is not a time", now):
                (item,) = [q for q in store.list_quarantined(task) if q.key == key]
                quarantined.append(item)
        poison.difference_update(q.key.instance for q in quarantined)
        if len(quarantined) == limit:
            return ClaimedBatch(now, [], quarantined)
        batch = real_claim(task, partition, now, limit - len(quarantined), *rest)
        return ClaimedBatch(now, batch.records, quarantined)

    monkeypatch.setattr(store, "claim", claim)


def test_records_the_store_quarantined_count_against_the_limit_and_are_logged_once(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hello = hello_task(extension)
    bad = [f"bad{i}" for i in range(5)]
    for name in [*bad, "good1", "good2", "good3"]:
        extension.schedule_task(hello, name, interval=timedelta(seconds=1))
    poisoning_claims(extension, monkeypatch, set(bad))
    fake_clock.advance(seconds=1)
    scheduler = beat()

    with caplog.at_level(logging.WARNING, "celery_pyncette"):
        delays = [scheduler.tick() for _ in range(10)]

    assert sent(app) == ["good1", "good2", "good3"]
    assert all(delay > 0 for delay in delays)
    for name in bad:
        (warning,) = quarantine_warnings(caplog, name)
        assert "next_run is not a time" in warning


def test_a_broken_static_record_is_rewritten_from_code_at_beat_start(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @extension.task(name="every_second", schedule="* * * * * *")
    def every_second(context: Context) -> None: ...

    @extension.task(name="every_two", schedule="* * * * * */2")
    def every_two(context: Context) -> None: ...

    key = InstanceKey("every_second", 0, STATIC_INSTANCE)
    other = InstanceKey("every_two", 0, STATIC_INSTANCE)
    store = extension.store
    # A record the store cannot decode (raw garbage, per store in the contract tests) ...
    store.upsert(InstanceRecord(key, fake_clock.now, NONSENSE, {}), fake_clock.now)
    real_get = store.get

    def get(wanted: InstanceKey) -> InstanceRecord | None:
        if wanted == key:
            raise CorruptRecordError(wanted, "spec is not JSON")
        return real_get(wanted)

    monkeypatch.setattr(store, "get", get)
    # ... and one a claim already quarantined.
    store.upsert(InstanceRecord(other, fake_clock.now, NONSENSE, {}), fake_clock.now)
    assert store.quarantine(other, None, "locked_until is not a time", fake_clock.now)
    scheduler = beat()

    with caplog.at_level(logging.WARNING, "celery_pyncette"):
        scheduler.tick()
        monkeypatch.setattr(store, "get", real_get)  # rewritten: it decodes now
        fake_clock.advance(seconds=2)
        scheduler.tick()

    assert sent(app) == ["every_second", "every_two"]
    assert store.list_quarantined() == []
    rewrites = [r.getMessage() for r in caplog.records if "rewrote" in r.getMessage()]
    assert len(rewrites) == 2
    assert any("spec is not JSON" in m for m in rewrites)
    assert any("locked_until is not a time" in m for m in rewrites)


class Flaky(BaseSchedule):  # type: ignore[misc]
    """A custom Celery schedule whose arithmetic fails once ``broken`` is set."""

    broken = False

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        if Flaky.broken:
            raise RuntimeError("the holiday calendar service is down")
        return timedelta(seconds=1)

    def is_due(self, last_run_at: datetime) -> schedstate:
        return schedstate(True, 1.0)

    def __repr__(self) -> str:
        return "<Flaky>"


@pytest.fixture
def flaky() -> Iterator[type[Flaky]]:
    Flaky.broken = False
    yield Flaky
    Flaky.broken = False


def test_a_next_run_that_cannot_be_computed_is_quarantined_and_the_rest_is_sent(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    flaky: type[Flaky],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app.conf.beat_schedule = {
        "calendar": {"task": "proj.calendar", "schedule": flaky()},
        "tick": {"task": "proj.tick", "schedule": timedelta(seconds=1)},
    }
    scheduler = beat()
    scheduler.tick()  # both records written from code
    flaky.broken = True
    extension.strike("calendar")  # beat commits a struck occurrence: its next run is computed
    fake_clock.advance(seconds=1)

    with caplog.at_level(logging.WARNING, "celery_pyncette"):
        delays = [scheduler.tick() for _ in range(5)]

    assert sent(app) == ["proj.tick"]
    (quarantined,) = extension.store.list_quarantined()
    assert quarantined.key == InstanceKey("calendar", 0, STATIC_INSTANCE)
    assert "holiday calendar service is down" in quarantined.reason
    warnings = [r for r in caplog.records if r.name == "celery_pyncette.quarantine"]
    assert len(warnings) == 1
    assert all(delay > 0 for delay in delays)


def test_an_at_most_once_record_whose_next_run_fails_is_quarantined_not_sent(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hello = hello_task(extension, execution_mode=ExecutionMode.AT_MOST_ONCE)
    extension.schedule_task(hello, "odd", interval=timedelta(seconds=7))
    extension.schedule_task(hello, "even", interval=timedelta(seconds=2))
    real_next_run = IntervalSchedule.next_run

    def next_run(self: IntervalSchedule, *args: Any, **kwargs: Any) -> datetime | None:
        if self.interval == timedelta(seconds=7):
            raise OverflowError("date value out of range")
        return real_next_run(self, *args, **kwargs)

    monkeypatch.setattr(IntervalSchedule, "next_run", next_run)
    fake_clock.advance(seconds=7)
    scheduler = beat()
    scheduler.tick()

    assert sent(app) == ["even"]
    (quarantined,) = extension.store.list_quarantined("hello")
    assert quarantined.key.instance == "odd"
    assert "OverflowError" in quarantined.reason


@pytest.mark.parametrize("delay", [31, 0], ids=["after-the-lease", "at-once"])
def test_schedule_task_repairs_a_quarantined_record_and_unschedule_task_removes_one(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    url: str,
    delay: float,
) -> None:
    hello = hello_task(extension)
    write_garbage(extension, "fixed", fake_clock.now)
    write_garbage(extension, "dropped", fake_clock.now)
    scheduler = beat()
    scheduler.tick()
    assert len(extension.store.list_quarantined("hello")) == 2
    fake_clock.advance(seconds=delay)

    extension.schedule_task(hello, "fixed", interval=timedelta(seconds=1))
    assert extension.unschedule_task(hello, "dropped")
    fake_clock.advance(seconds=1)
    scheduler.tick()

    assert sent(app) == ["fixed"], "repaired: it runs again"
    assert extension.store.list_quarantined() == []
    assert extension.get_task_state(hello, "dropped") is None


def test_a_worker_quarantines_a_record_whose_message_spec_does_not_decode(
    fake_clock: FakeClock,
    app: Celery,
    extension: Pyncette,
    beat: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[str] = []

    @extension.dynamic_task(name="hello")
    def hello(context: Context) -> None:
        runs.append(context.instance or "")

    extension.schedule_task(hello, "u1", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    scheduler = beat()
    scheduler.tick()
    (message,) = take_waiting(app)
    headers = dict(message.headers)
    headers["pyncette"] = {**headers["pyncette"], "spec": {"kind": "from-a-newer-version"}}

    with caplog.at_level(logging.WARNING, "celery_pyncette"):
        result = app.tasks["hello"].apply(kwargs=message.decode()[1], headers=headers)

    assert result.successful(), "nothing raised into Celery"
    assert runs == ["u1"]
    (quarantined,) = extension.store.list_quarantined("hello")
    assert quarantined.key.instance == "u1"
    assert "from-a-newer-version" in quarantined.reason
    (warning,) = quarantine_warnings(caplog, "u1")
    assert "worker" in warning


def test_on_sqlite_a_row_that_is_not_json_stops_neither_its_task_nor_the_others(
    fake_clock: FakeClock, app: Celery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "raw.sqlite3"
    pyncette = Pyncette(app, url=f"sqlite:///{database}", batch_size=5, poll_interval=1.0)

    @pyncette.task(name="every_second", schedule="* * * * * *")
    def every_second(context: Context) -> None: ...

    hello = hello_task(pyncette)
    for name in ("a", "b", "c"):
        pyncette.schedule_task(hello, name, interval=timedelta(seconds=1))
    with sqlite3.connect(database) as raw:  # garbage straight into the row, as the issue found it
        raw.execute("UPDATE pyncette_instances SET spec = '{not json' WHERE instance = 'b'")
    raw.close()
    scheduler = Scheduler(app)
    try:
        with caplog.at_level(logging.WARNING, "celery_pyncette"):
            scheduler.tick()  # writes the static record
            fake_clock.advance(seconds=1)
            scheduler.tick()
            first = sent(app)
            for _ in range(5):
                assert scheduler.tick() > 0
        (quarantined,) = pyncette.store.list_quarantined()
    finally:
        scheduler.close()
        pyncette.close()

    assert first == ["a", "c", "every_second"]
    assert quarantined.key == InstanceKey("hello", 0, "b")
    assert len(quarantine_warnings(caplog, "b")) == 1
