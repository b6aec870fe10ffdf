"""Leases over a message's life, in process (memory and SQLite stores, kombu's memory broker).

Beat claims an occurrence under ``lease_duration``, then, once the batch is published, extends
the batch's leases over their wait in the queue (``pyncette_delivery_timeout``) in one call. The
worker takes the lease at start under a fresh token for a full ``lease_duration``: a second
delivery of the same message is skipped, a killed worker's occurrence is sent again one lease
after its start, and ``retry()`` runs under the new token. Time is driven by the fake clock.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, ExecutionMode, Pyncette
from celery_pyncette._config import settings_from
from celery_pyncette._occurrence import occurrence_of
from celery_pyncette.errors import ConfigurationError, StoreError
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from celery_pyncette.worker import Execution
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import Message, run, static_state, tick

LEASE = timedelta(seconds=10)
DELIVERY = timedelta(seconds=300)
JOB = InstanceKey("job", 0, STATIC_INSTANCE)


@pytest.fixture(params=["memory", "sqlite"])
def leased(request: pytest.FixtureRequest, app: Celery, tmp_path: Path) -> Iterator[Pyncette]:
    """A Pyncette on the memory store or SQLite, lease 10 s, delivery timeout 300 s."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.db"
    extension = Pyncette(app, url=url, lease_duration=LEASE, delivery_timeout=DELIVERY)
    yield extension
    extension.close()


@pytest.fixture
def calls() -> list[Context]:
    return []


def delivered(message: Message) -> Message:
    """The message as a broker delivers it (again): a decoded copy."""
    return copy.deepcopy(message)


def every_second_job(pyncette: Pyncette, calls: list[Context], **options: Any) -> Any:
    @pyncette.task(name="job", schedule="* * * * * *", **options)
    def job(context: Context) -> None:
        calls.append(context)

    return job


def first_message(pyncette: Pyncette, clock: FakeClock) -> Message:
    tick(pyncette)
    clock.advance(seconds=1)
    (message,) = tick(pyncette)
    return message


def start_and_die(pyncette: Pyncette, message: Message) -> Execution:
    """What a worker does before the function runs, then nothing more (it is killed)."""
    occurrence = occurrence_of(type("Request", (), {"headers": message[2]})())
    assert occurrence is not None
    definition = pyncette.definition(occurrence.task)
    execution = Execution(pyncette.runtime, definition, occurrence, message[1])
    assert execution.claim()
    return execution


# --- settings -----------------------------------------------------------------------------------


def test_the_delivery_timeout_defaults_to_an_hour_and_takes_seconds_or_a_timedelta() -> None:
    assert settings_from({}, {}).delivery_timeout == timedelta(hours=1)
    conf = {"pyncette_delivery_timeout": "90"}
    assert settings_from(conf, {}).delivery_timeout == timedelta(seconds=90)
    minutes = {"delivery_timeout": timedelta(minutes=5)}
    assert settings_from(conf, minutes).delivery_timeout == timedelta(minutes=5)


@pytest.mark.parametrize("bad", [0, -1, "soon", float("inf")])
def test_a_malformed_delivery_timeout_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="pyncette_delivery_timeout"):
        settings_from({"pyncette_delivery_timeout": bad}, {})


def test_a_delivery_timeout_shorter_than_the_lease_is_refused_naming_both() -> None:
    conf = {"pyncette_lease_duration": 120, "pyncette_delivery_timeout": 60}
    with pytest.raises(ConfigurationError) as refused:
        settings_from(conf, {})
    message = str(refused.value)
    assert "pyncette_delivery_timeout (60 s)" in message
    assert "pyncette_lease_duration (120 s)" in message


# --- beat: the lease covers the wait in the queue -----------------------------------------------


def test_a_sent_occurrence_is_held_for_the_delivery_timeout_and_its_header_keeps_the_claim(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    every_second_job(leased, [])
    message = first_message(leased, fake_clock)

    header = message[2]["pyncette"]
    state = static_state(leased, "job")
    assert state.lease == header["lease"]
    assert state.locked_until == fake_clock.now + DELIVERY
    assert datetime.fromisoformat(header["locked_until"]) == fake_clock.now + LEASE


def test_a_backlog_waiting_longer_than_its_lease_is_not_sent_again(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    every_second_job(leased, [])
    first_message(leased, fake_clock)

    for _ in range(5):
        fake_clock.advance(seconds=LEASE.total_seconds() * 2)
        assert tick(leased) == []


def test_a_message_the_broker_lost_is_sent_again_after_the_delivery_timeout(
    fake_clock: FakeClock, leased: Pyncette, calls: list[Context]
) -> None:
    every_second_job(leased, calls)
    lost = first_message(leased, fake_clock)
    sent_at = fake_clock.now

    fake_clock.advance(seconds=DELIVERY.total_seconds() - 1)
    assert tick(leased) == []
    fake_clock.advance(seconds=1)
    (again,) = tick(leased)

    assert again[2]["pyncette"]["scheduled_at"] == lost[2]["pyncette"]["scheduled_at"]
    assert fake_clock.now - sent_at == DELIVERY
    run(leased, again)
    run(leased, lost)  # found after all: its lease is gone
    assert len(calls) == 1


def test_a_batch_is_extended_in_one_store_call_after_it_is_published(
    fake_clock: FakeClock, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyncette = Pyncette(app, url="memory://", batch_size=50, delivery_timeout=DELIVERY)

    @pyncette.dynamic_task(name="user")
    def user(context: Context) -> None: ...

    for n in range(120):
        pyncette.schedule_task(user, f"u{n:03d}", interval=timedelta(seconds=1))
    store = pyncette.store
    calls: list[int] = []
    real = store.extend_leases

    def counting(items: Any, until: datetime) -> list[InstanceKey]:
        calls.append(len(items))
        return real(items, until)

    monkeypatch.setattr(store, "extend_leases", counting)
    fake_clock.advance(seconds=1)

    assert len(tick(pyncette)) == 120
    assert calls == [50, 50, 20]
    records = store.list_instances("user", 0, 200)
    assert {r.locked_until for r in records} == {fake_clock.now + DELIVERY}
    pyncette.close()


def test_the_extension_runs_beside_the_dispatch_and_is_done_when_the_tick_ends(
    fake_clock: FakeClock, leased: Pyncette, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_second_job(leased, [])
    threads: list[str] = []
    real = leased.store.extend_leases

    def recording(items: Any, until: datetime) -> list[InstanceKey]:
        threads.append(threading.current_thread().name)
        return real(items, until)

    monkeypatch.setattr(leased.store, "extend_leases", recording)
    first_message(leased, fake_clock)

    (thread,) = threads
    assert thread.startswith("pyncette-queue-wait")
    assert static_state(leased, "job").locked_until == fake_clock.now + DELIVERY


def test_a_task_lease_longer_than_the_delivery_timeout_is_not_shortened(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    every_second_job(leased, [], lease_duration=DELIVERY * 2)
    first_message(leased, fake_clock)

    assert static_state(leased, "job").locked_until == fake_clock.now + DELIVERY * 2


def test_a_store_failure_while_extending_is_logged_and_the_batch_stays_sent(
    fake_clock: FakeClock,
    leased: Pyncette,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    every_second_job(leased, [])
    tick(leased)
    fake_clock.advance(seconds=1)

    def failing(items: Any, until: datetime) -> list[InstanceKey]:
        raise StoreError("store down")

    monkeypatch.setattr(leased.store, "extend_leases", failing)
    with caplog.at_level(logging.WARNING, logger="celery_pyncette.dispatch"):
        (_message,) = tick(leased)

    assert "could not extend the leases of 1 sent occurrence(s) of job" in caplog.text
    assert static_state(leased, "job").locked_until == fake_clock.now + LEASE


# --- worker: the execution lease ----------------------------------------------------------------


def test_a_second_delivery_while_the_first_runs_is_skipped(
    fake_clock: FakeClock, leased: Pyncette, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[Context] = []

    @leased.task(name="job", schedule="* * * * * *")
    def job(context: Context) -> None:
        runs.append(context)
        if len(runs) == 1:
            fake_clock.advance(seconds=2)
            run(leased, delivered(message))  # the broker delivers the same message again

    message = first_message(leased, fake_clock)
    with caplog.at_level(logging.WARNING, logger="celery_pyncette.worker"):
        run(leased, delivered(message))

    assert len(runs) == 1
    assert "skipped" in caplog.text
    assert "lease was taken over" in caplog.text
    assert static_state(leased, "job").last_status == "success"


def test_a_killed_workers_occurrence_is_sent_again_one_lease_after_its_start(
    fake_clock: FakeClock, leased: Pyncette, calls: list[Context]
) -> None:
    every_second_job(leased, calls)
    message = first_message(leased, fake_clock)
    fake_clock.advance(seconds=30)  # waited in the queue
    start_and_die(leased, message)

    fake_clock.advance(seconds=LEASE.total_seconds() - 1)
    assert tick(leased) == []
    fake_clock.advance(seconds=1)
    (again,) = tick(leased)

    assert again[2]["pyncette"]["scheduled_at"] == message[2]["pyncette"]["scheduled_at"]
    run(leased, message)  # the broker redelivers the first message too: skipped
    run(leased, again)
    assert len(calls) == 1
    assert calls[0].occurrence is not None
    assert calls[0].occurrence.scheduled_at.isoformat() == message[2]["pyncette"]["scheduled_at"]


def test_a_lease_that_expired_unclaimed_is_still_taken_at_start(
    fake_clock: FakeClock, app: Celery, calls: list[Context]
) -> None:
    pyncette = Pyncette(app, url="memory://", lease_duration=LEASE, delivery_timeout=LEASE)
    every_second_job(pyncette, calls)
    message = first_message(pyncette, fake_clock)
    fake_clock.advance(seconds=LEASE.total_seconds() * 3)  # nobody claimed it again

    run(pyncette, message)

    assert len(calls) == 1
    assert static_state(pyncette, "job").last_status == "success"
    pyncette.close()


def test_a_store_failure_at_start_runs_under_the_lease_the_message_has(
    fake_clock: FakeClock,
    leased: Pyncette,
    calls: list[Context],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    every_second_job(leased, calls)
    message = first_message(leased, fake_clock)

    def failing(*args: Any, **kwargs: Any) -> None:
        raise StoreError("store down")

    monkeypatch.setattr(leased.store, "extend_lease", failing)
    with caplog.at_level(logging.WARNING, logger="celery_pyncette.worker"):
        run(leased, message)

    assert "could not take the lease of" in caplog.text
    (context,) = calls
    assert context.occurrence is not None
    assert context.occurrence.lease == message[2]["pyncette"]["lease"]
    assert static_state(leased, "job").last_status == "success"


def test_retry_runs_under_the_lease_the_execution_took(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    runs: list[str | None] = []

    @leased.task(name="job", schedule="* * * * * *", bind=True)
    def job(self: Any, context: Context) -> None:
        assert context.occurrence is not None
        runs.append(context.occurrence.lease)
        assert self.request.headers["pyncette"]["lease"] == context.occurrence.lease
        if len(runs) == 1:
            raise self.retry(countdown=0)

    message = first_message(leased, fake_clock)
    sent_lease = message[2]["pyncette"]["lease"]
    run(leased, message)

    assert len(runs) == 2
    assert sent_lease not in runs
    assert runs[0] != runs[1]
    state = static_state(leased, "job")
    assert (state.lease, state.last_status) == (None, "success")


def test_a_plain_task_takes_the_lease_and_runs_a_second_delivery_logged(
    fake_clock: FakeClock, app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    @app.task(name="plain.add_twice")
    def add(x: int, y: int) -> int:
        context = current()
        seen.append(context.occurrence.lease if context and context.occurrence else None)
        if len(seen) == 1:
            app.tasks["plain.add_twice"].apply(args=(x, y), headers=copy.deepcopy(headers))
        return x + y

    app.conf.beat_schedule = {
        "add-every-2s": {"task": "plain.add_twice", "schedule": 2.0, "args": (1, 2)}
    }
    pyncette = Pyncette(app, url="memory://", lease_duration=LEASE)
    tick(pyncette)
    fake_clock.advance(seconds=2)
    ((_, _, headers),) = tick(pyncette)

    with caplog.at_level(logging.WARNING, logger="celery_pyncette.worker"):
        assert app.tasks["plain.add_twice"].apply(args=(1, 2), headers=dict(headers)).get() == 3

    assert len(seen) == 2, "a plain task cannot be skipped"
    assert seen[0] not in (None, headers["pyncette"]["lease"])
    assert "a plain task cannot be skipped" in caplog.text
    assert static_state(pyncette, "add-every-2s").last_status == "success"
    pyncette.close()


def current() -> Context | None:
    from celery_pyncette import current_context

    return current_context()


# --- concurrency slots --------------------------------------------------------------------------


def test_a_slot_is_held_over_the_queue_wait_and_from_the_workers_start(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    @leased.dynamic_task(name="sync", concurrency_limit=1)
    def sync(context: Context) -> None: ...

    leased.schedule_task(sync, "a", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    (message,) = tick(leased)
    slot_key = InstanceKey(*_slot(message))
    slot = leased.store.get(slot_key)
    assert slot is not None
    assert slot.locked_until == fake_clock.now + DELIVERY

    started = fake_clock.advance(seconds=60)
    start_and_die(leased, message)

    slot = leased.store.get(slot_key)
    assert slot is not None
    assert slot.locked_until == started + LEASE


def test_a_second_delivery_skipped_leaves_the_running_deliverys_slot_held(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    slots: list[Any] = []

    @leased.dynamic_task(name="sync", concurrency_limit=1)
    def sync(context: Context) -> None:
        if not slots:
            run(leased, delivered(message))  # delivered again while this run goes on
            slots.append(leased.store.get(InstanceKey(*_slot(message))))

    leased.schedule_task(sync, "a", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    (message,) = tick(leased)
    run(leased, message)

    (slot,) = slots
    assert slot is not None
    assert slot.lease == message[2]["pyncette"]["slot"][2], "the skipped delivery freed the slot"


def test_an_at_most_once_slot_is_held_from_the_workers_start_for_a_lease(
    fake_clock: FakeClock, leased: Pyncette
) -> None:
    @leased.dynamic_task(
        name="sync_once", concurrency_limit=1, execution_mode=ExecutionMode.AT_MOST_ONCE
    )
    def sync_once(context: Context) -> None: ...

    leased.schedule_task(sync_once, "a", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    (message,) = tick(leased)
    slot_key = InstanceKey(*_slot(message))
    slot = leased.store.get(slot_key)
    assert slot is not None
    assert slot.locked_until == fake_clock.now + DELIVERY

    started = fake_clock.advance(seconds=60)
    start_and_die(leased, message)

    slot = leased.store.get(slot_key)
    assert slot is not None
    assert slot.locked_until == started + LEASE


def _slot(message: Message) -> tuple[str, int, str]:
    task, instance, _ = message[2]["pyncette"]["slot"]
    return task, 0, instance
