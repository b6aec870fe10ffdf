"""The beat Scheduler as Celery drives it: lazy banners, ticks that never raise, sleeps."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import ConfigurationError, Context, Pyncette, StoreError
from celery_pyncette.beat import Scheduler, redact
from tests.conftest import FakeClock
from tests.support.dispatching import dispatch_stopping_after


def test_a_lazy_scheduler_does_no_io_and_shows_its_store(app: Celery) -> None:
    # Nothing listens on port 1: any connection attempt would fail.
    Pyncette(app, url="redis://user:secret@127.0.0.1:1/0")

    scheduler = Scheduler(app, lazy=True)

    assert "redis://user:***@127.0.0.1:1/0" in scheduler.info
    scheduler.close()
    scheduler.close()


def test_a_bad_setting_stops_beat_at_start(app: Celery) -> None:
    app.conf.pyncette_batch_size = "lots"

    with pytest.raises(ConfigurationError, match="pyncette_batch_size"):
        Scheduler(app)


def test_tick_never_raises_and_backs_off_while_the_store_fails(
    fake_clock: FakeClock,
    app: Celery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pyncette = Pyncette(app, url="memory://", poll_interval=1.0)

    @pyncette.task(schedule="* * * * * *", name="job")
    def job(context: Context) -> None: ...

    scheduler = Scheduler(app)
    store = pyncette.store

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("connection refused")

    with monkeypatch.context() as patched, caplog.at_level(logging.WARNING, "celery_pyncette"):
        patched.setattr(store, "claim_due", down)
        patched.setattr(store, "get", down)
        delays = [scheduler.tick() for _ in range(9)]

    assert delays == [1.0 * 2] * 9, "backs off, but never so long that beat resumes late"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, "one traceback for an outage, then one-line warnings"
    warnings = [r for r in caplog.records if not r.exc_info and "failed again" in r.message]
    assert [w.args[0] for w in warnings] == [2, 4, 8], "repeated failures are logged sparsely"
    assert scheduler.tick() <= 1.0
    scheduler.close()


def test_the_sleep_wakes_for_the_next_known_due_time(fake_clock: FakeClock, app: Celery) -> None:
    pyncette = Pyncette(app, url="memory://", poll_interval=5.0)

    @pyncette.task(schedule="* * * * * */2", name="job")
    def job(context: Context) -> None: ...

    scheduler = Scheduler(app)
    fake_clock.advance(seconds=0.5)

    assert scheduler.tick() == pytest.approx(1.5)
    scheduler.close()


def test_the_sleep_never_exceeds_the_poll_interval(fake_clock: FakeClock, app: Celery) -> None:
    pyncette = Pyncette(app, url="memory://", poll_interval=0.25)

    @pyncette.task(schedule="0 0 * * *", name="daily")
    def daily(context: Context) -> None: ...

    scheduler = Scheduler(app)

    assert scheduler.tick() == 0.25
    scheduler.close()


def test_ticks_start_a_poll_interval_apart_however_long_one_takes(
    fake_clock: FakeClock, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    Pyncette(app, url="memory://", poll_interval=1.0)
    scheduler = Scheduler(app)
    scheduler.tick()  # the first tick sets up the dispatcher
    dispatcher = scheduler._dispatcher
    assert dispatcher is not None

    def slow_dispatch(definitions: Any) -> bool:
        fake_clock.advance(seconds=0.3)
        return False

    monkeypatch.setattr(dispatcher, "dispatch", slow_dispatch)

    assert scheduler.tick() == pytest.approx(0.7)
    # a tick longer than the interval, with nothing left over: the next one at once
    monkeypatch.setattr(dispatcher, "dispatch", lambda d: not fake_clock.advance(seconds=1.5))
    assert scheduler.tick() == 0.0
    scheduler.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:pw@db/app", "postgresql://app:***@db/app"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:///x.sqlite3", "sqlite:///x.sqlite3"),
    ],
)
def test_passwords_are_hidden_in_logs(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_shutdown_signal_during_a_tick_is_held_until_the_batch_is_sent() -> None:
    import os
    import signal

    from celery_pyncette.beat import deferred_shutdown

    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with deferred_shutdown() as stop_requested:
            assert stop_requested() is False
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop_requested() is True
            assert received == [], "the shutdown ran in the middle of the tick"
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_dispatcher_stops_claiming_once_a_shutdown_is_requested(
    fake_clock: FakeClock, app: Celery
) -> None:
    pyncette = Pyncette(app, url="memory://", batch_size=10)

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    pyncette.schedule_tasks(
        hello, {f"i{n:03d}": {} for n in range(50)}, interval=timedelta(seconds=1)
    )
    fake_clock.advance(seconds=1)

    assert dispatch_stopping_after(pyncette, 2) == 2
    leased = [r for r in pyncette.store.list_instances("hello", 0, 100) if r.lease]
    assert len(leased) == 20, "only the two sent batches hold leases"
