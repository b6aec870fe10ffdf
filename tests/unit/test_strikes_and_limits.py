"""Strikes and concurrency limits, in process: memory store, kombu memory broker, driven clock."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette._strikes import StrikeView, matches
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, Strike
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import run, tick
from tests.unit.test_leases import start_and_die


@pytest.mark.parametrize(
    ("strike", "args", "struck"),
    [
        (Strike("t"), {}, True),
        (Strike("other"), {}, False),
        (Strike(None, "customer_id", "==", 12345), {"customer_id": 12345}, True),
        (Strike(None, "customer_id", "==", 12345), {"customer_id": 1}, False),
        (Strike(None, "customer_id", "==", 12345), {}, False),
        (Strike("t", "n", "!=", 3), {"n": 4}, True),
        (Strike("t", "n", "<", 3), {"n": 2}, True),
        (Strike("t", "n", "<=", 3), {"n": 3}, True),
        (Strike("t", "n", ">", 3), {"n": 3}, False),
        (Strike("t", "n", ">=", 3), {"n": 3}, True),
        (Strike("u", "n", ">=", 3), {"n": 3}, False),
    ],
)
def test_strike_matching(strike: Strike, args: dict[str, Any], struck: bool) -> None:
    assert matches(strike, "t", args) is struck


def test_incomparable_types_do_not_match_and_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strike = Strike("t", "n", "<", 10)

    with caplog.at_level(logging.WARNING, "celery_pyncette.strikes"):
        results = [matches(strike, "t", {"n": "text"}) for _ in range(3)]

    assert results == [False, False, False]
    assert len([r for r in caplog.records if "cannot compare" in r.message]) == 1


def test_the_strike_view_rereads_only_when_the_marker_moves(pyncette: Pyncette) -> None:
    store = pyncette.store
    reads = {"n": 0}
    real = store.list_strikes

    def counting() -> list[Strike]:
        reads["n"] += 1
        return real()

    store.list_strikes = counting  # type: ignore[method-assign]
    ticks = iter(float(n) for n in range(100))
    view = StrikeView(store, refresh_interval=1.0, monotonic=lambda: next(ticks))

    for _ in range(5):
        view.current()
    store.add_strike(Strike("t"))
    for _ in range(5):
        view.current()

    assert reads["n"] == 2
    assert view.current() == [Strike("t")]


def test_beat_skips_a_struck_occurrence_and_advances_it(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    calls: list[Context] = []

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None:
        calls.append(context)

    pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=1), username="bill")
    pyncette.schedule_task(hello, "ann", interval=timedelta(seconds=1), username="ann")
    pyncette.strike(hello, "username", "==", "bill")
    fake_clock.advance(seconds=1)

    messages = tick(pyncette)

    assert [m[2]["pyncette"]["instance"] for m in messages] == ["ann"]
    run(pyncette, messages[0])
    bill = pyncette.get_task_state(hello, "bill")
    assert bill is not None
    assert bill.last_status == "struck"
    assert bill.scheduled_at == fake_clock.now + timedelta(seconds=1)

    assert pyncette.restore(hello, "username", "==", "bill") is True
    fake_clock.advance(seconds=2)
    assert sorted(m[2]["pyncette"]["instance"] for m in tick(pyncette)) == ["ann", "bill"]


def test_a_worker_skips_a_message_struck_after_it_was_sent(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    calls: list[Context] = []

    @pyncette.task(name="job", schedule="* * * * * *", customer_id=7)
    def job(context: Context) -> None:
        calls.append(context)

    tick(pyncette)
    due = fake_clock.advance(seconds=1)
    (message,) = tick(pyncette)
    pyncette.strike(None, "customer_id", "==", 7)
    fake_clock.advance(seconds=2)  # past the view's refresh interval

    run(pyncette, message)

    assert calls == []
    state = pyncette.store.get(InstanceKey("job", 0, STATIC_INSTANCE))
    assert state.last_status == "struck"
    assert state.lease is None
    assert state.next_run > due


def test_a_per_argument_limit_holds_occurrences_until_a_slot_frees(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    @pyncette.dynamic_task(
        name="sync", concurrency_limit=("customer_id", 1), lease_duration=timedelta(seconds=10)
    )
    def sync(context: Context) -> None: ...

    for name, customer in (("a", 1), ("b", 1), ("c", 2)):
        pyncette.schedule_task(sync, name, interval=timedelta(seconds=1), customer_id=customer)
    fake_clock.advance(seconds=1)

    first = tick(pyncette)
    assert sorted(m[2]["pyncette"]["instance"] for m in first) == ["a", "c"]
    assert tick(pyncette) == [], "b must wait for customer 1's slot"

    run(pyncette, next(m for m in first if m[2]["pyncette"]["instance"] == "a"))
    (second,) = tick(pyncette)
    assert second[2]["pyncette"]["instance"] == "b"


def test_a_slot_of_a_killed_worker_frees_at_its_lease_expiry(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    @pyncette.dynamic_task(name="sync", concurrency_limit=1, lease_duration=timedelta(seconds=10))
    def sync(context: Context) -> None: ...

    pyncette.schedule_task(sync, "a", interval=timedelta(seconds=1))
    pyncette.schedule_task(sync, "b", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    (lost,) = tick(pyncette)
    assert tick(pyncette) == []
    fake_clock.advance(seconds=11)
    assert tick(pyncette) == [], "the slot of a message waiting in the queue is held"

    # Its worker starts it, then dies: nothing releases the slot, which expires with the run's
    # lease, 10 s after that start.
    start_and_die(pyncette, lost)
    fake_clock.advance(seconds=10)
    names = sorted(m[2]["pyncette"]["instance"] for m in tick(pyncette))

    assert len(names) == 1
    assert lost[2]["pyncette"]["slot"] is not None


def test_invalid_concurrency_limits_are_refused(pyncette: Pyncette) -> None:
    for bad in (0, -1, ("customer_id",), ("", 1), ("customer_id", 0), "1"):
        with pytest.raises(ValueError, match="concurrency_limit"):
            pyncette.dynamic_task(concurrency_limit=bad)


def test_lowering_a_limit_in_code_removes_the_extra_slots(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    from celery_pyncette._concurrency import ConcurrencyLimit, Slots

    slots = Slots("beat")
    pool = ConcurrencyLimit(3).pool("t", {})
    assert pool is not None
    store = pyncette.store
    lease = timedelta(seconds=5)
    assert all(slots.acquire(store, pool, 3, fake_clock.now, lease) for _ in range(3))

    fewer = Slots("beat")
    fake_clock.advance(seconds=6)
    assert fewer.acquire(store, pool, 1, fake_clock.now, lease) is not None
    assert fewer.acquire(store, pool, 1, fake_clock.now, lease) is None
