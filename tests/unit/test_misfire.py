"""Expiry relative to the occurrence: the message beat sends carries ``scheduled_at + expires``, and
a worker that gets it expired settles the occurrence as ``"expired"`` (Celery's ``task_revoked``
with ``expired=True``). Memory store, kombu's memory transport, the fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette
from celery_pyncette import _misfire as misfire
from celery_pyncette.worker._expiry import task_expired
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import static_state, tick

T = datetime(2030, 6, 1, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("expires", [30, 30.0, timedelta(seconds=30)])
def test_the_message_expires_relative_to_its_occurrence(
    fake_clock: FakeClock, pyncette: Pyncette, expires: Any
) -> None:
    @pyncette.task(name="job", schedule="* * * * * */10", expires=expires)
    def job(context: Context) -> None:
        pass

    tick(pyncette)
    due = fake_clock.advance(seconds=10)
    fake_clock.advance(seconds=4)  # beat sends it 4 s late: the expiry does not move

    (message,) = tick(pyncette)
    _, _, headers = message
    assert datetime.fromisoformat(headers["expires"]) == due + timedelta(seconds=30)


def test_a_beat_schedule_entrys_expires_counts_from_its_occurrence(
    fake_clock: FakeClock, app: Celery
) -> None:
    @app.task(name="unit.plain")
    def plain() -> None:
        pass

    app.conf.beat_schedule = {
        "every-10s": {
            "task": "unit.plain",
            "schedule": timedelta(seconds=10),
            "options": {"expires": 5},
        }
    }
    pyncette = Pyncette(app, url="memory://", poll_interval=0.5, lease_duration=30)
    try:
        tick(pyncette)
        due = fake_clock.advance(seconds=10)
        fake_clock.advance(seconds=2)
        (message,) = tick(pyncette)
    finally:
        pyncette.close()

    assert datetime.fromisoformat(message[2]["expires"]) == due + timedelta(seconds=5)


def test_a_worker_settles_an_expired_message_as_expired(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    runs: list[Context] = []

    @pyncette.task(name="job", schedule="* * * * * */10", expires=3)
    def job(context: Context) -> None:
        runs.append(context)

    tick(pyncette)
    due = fake_clock.advance(seconds=10)
    (message,) = tick(pyncette)
    assert static_state(pyncette, "job").lease is not None
    fake_clock.advance(seconds=5)  # the worker gets it after its expiry; Celery revokes it
    request = SimpleNamespace(kwargs=message[1], headers=message[2], **message[2])

    execution = task_expired(sender=job, request=request, expired=True)

    assert execution is not None
    assert execution.outcome == "expired"
    state = static_state(pyncette, "job")
    assert state.last_status == "expired"
    assert state.lease is None
    assert state.next_run == due + timedelta(seconds=10)
    assert runs == []


def test_a_revocation_that_is_not_an_expiry_is_left_alone(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    @pyncette.task(name="job", schedule="* * * * * */10", expires=3)
    def job(context: Context) -> None:
        pass

    tick(pyncette)
    fake_clock.advance(seconds=10)
    (message,) = tick(pyncette)
    request = SimpleNamespace(kwargs=message[1], headers=message[2], **message[2])

    assert task_expired(sender=job, request=request, expired=False) is None
    assert static_state(pyncette, "job").lease == message[2]["pyncette"]["lease"]


def test_an_expired_message_beat_did_not_send_is_ignored(pyncette: Pyncette) -> None:
    @pyncette.task(name="job", schedule="* * * * *")
    def job(context: Context) -> None:
        pass

    request = SimpleNamespace(kwargs={}, headers={})
    assert task_expired(sender=job, request=request, expired=True) is None


def test_expiry_forms() -> None:
    assert misfire.expiry(T, 30) == T + timedelta(seconds=30)
    assert misfire.expiry(T, timedelta(minutes=1)) == T + timedelta(minutes=1)
    absolute = datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert misfire.expiry(T, absolute) == absolute
    assert misfire.expiry(T, "2031-01-01T00:00:00") == absolute  # naive: UTC
    assert misfire.expiry(T, None) is None


def test_message_options_share_one_dict_per_occurrence_time() -> None:
    options = {"queue": "q", "expires": 10}
    memo: dict[datetime, Any] = {}
    first = misfire.message_options(options, T, memo)
    again = misfire.message_options(options, T, memo)
    later = misfire.message_options(options, T + timedelta(seconds=1), memo)

    assert first is again
    assert first == {"queue": "q", "expires": T + timedelta(seconds=10)}
    assert later["expires"] == T + timedelta(seconds=11)
    plain = {"queue": "q"}
    assert misfire.message_options(plain, T, memo) is plain
    assert options == {"queue": "q", "expires": 10}


def test_a_stored_grace_is_read_back_from_every_stores_numbers() -> None:
    assert misfire.stored_grace({"kind": "interval", misfire.SPEC_KEY: 10.0}) == timedelta(
        seconds=10
    )
    assert misfire.stored_grace({misfire.SPEC_KEY: Decimal("2.5")}) == timedelta(seconds=2.5)
    for unreadable in (None, {}, {misfire.SPEC_KEY: "x"}, {misfire.SPEC_KEY: True}):
        assert misfire.stored_grace(unreadable) is None
    assert misfire.with_grace({"kind": "once"}, None) == {"kind": "once"}


def test_a_beat_schedule_entry_with_a_bad_expires_is_refused(app: Celery) -> None:
    from celery_pyncette.errors import ConfigurationError

    app.conf.beat_schedule = {
        "bad": {"task": "unit.plain", "schedule": 10.0, "options": {"expires": "soon"}}
    }
    pyncette = Pyncette(app, url="memory://")
    try:
        with pytest.raises(ConfigurationError, match=r"beat_schedule\['bad'\].*expires"):
            pyncette.definitions()
    finally:
        pyncette.close()
