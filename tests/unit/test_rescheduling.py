"""Re-scheduling an existing instance: the same timing keeps its timer, a changed one restarts it.

On the memory store under a driven clock (the contract suite, tests/contract/
test_keep_next_run_contract.py, checks every store's part of it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette, TaskLockedError
from celery_pyncette._dispatch import Dispatcher
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

LEASE = timedelta(seconds=30)
NOON = datetime(2030, 6, 1, 12, tzinfo=timezone.utc)  # the fake clock's start


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None:
        if context.args.get("reschedule"):
            context.reschedule(schedule="0 * * * *", username="again")

    return hello


def due(pyncette: Pyncette, now: datetime) -> list[str]:
    """The instances a beat would claim at ``now`` (claimed, so they are locked afterwards)."""
    claimed = pyncette.store.claim_due("hello", 0, now, 100, LEASE, "beat")
    return sorted(r.key.instance for r in claimed)


def test_the_same_cron_at_a_later_start_keeps_the_first_next_run(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    """App start-up code that runs again (here after the 13:00 run was missed) changes nothing:
    recomputing would skip 13:00 and wait for 14:00."""
    first = pyncette.schedule_task(hello, "bill", schedule="0 * * * *", username="bill")
    fake_clock.advance(minutes=90)

    again = pyncette.schedule_task(hello, "bill", schedule="0 * * * *", username="bill")

    assert first.scheduled_at == again.scheduled_at == NOON + timedelta(hours=1)
    assert pyncette.get_task_state(hello, "bill") == again
    assert due(pyncette, fake_clock.now) == ["bill"]


def test_the_same_interval_keeps_its_timer_and_takes_the_new_arguments(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_task(hello, "bill", interval=timedelta(hours=1), username="bill")
    fake_clock.advance(minutes=30)

    state = pyncette.schedule_task(hello, "bill", interval=timedelta(hours=1), username="william")

    assert state.scheduled_at == NOON + timedelta(hours=1)  # not 13:30
    assert state.args == {"username": "william"}
    assert pyncette.get_task_state(hello, "bill") == state


@pytest.mark.parametrize(
    ("changed", "first"),
    [
        ({"schedule": "30 * * * *"}, NOON + timedelta(minutes=30)),
        # UTC+5:30: its hours start at :30 UTC
        ({"schedule": "0 * * * *", "timezone": "Asia/Kolkata"}, NOON + timedelta(minutes=30)),
        ({"interval": timedelta(minutes=45)}, NOON + timedelta(minutes=55)),
    ],
    ids=["cron", "timezone", "interval"],
)
def test_a_changed_timing_takes_its_first_occurrence_after_now(
    fake_clock: FakeClock,
    pyncette: Pyncette,
    hello: object,
    changed: dict[str, Any],
    first: datetime,
) -> None:
    pyncette.schedule_task(hello, "bill", schedule="0 * * * *")
    fake_clock.advance(minutes=10)

    state = pyncette.schedule_task(hello, "bill", **changed)

    assert state.scheduled_at == first
    assert pyncette.get_task_state(hello, "bill") == state


def test_force_restarts_the_timer(fake_clock: FakeClock, pyncette: Pyncette, hello: object) -> None:
    pyncette.schedule_task(hello, "bill", interval=timedelta(hours=1))
    fake_clock.advance(minutes=30)

    state = pyncette.schedule_task(hello, "bill", interval=timedelta(hours=1), force=True)

    assert state.scheduled_at == NOON + timedelta(minutes=90)


def test_a_running_instance_still_needs_force(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_task(hello, "bill", schedule="0 * * * *", username="bill")
    fake_clock.advance(hours=1)
    assert due(pyncette, fake_clock.now) == ["bill"]

    with pytest.raises(TaskLockedError):
        pyncette.schedule_task(hello, "bill", schedule="0 * * * *", username="other")
    state = pyncette.schedule_task(hello, "bill", schedule="0 * * * *", force=True)

    # Forced over a running occurrence, the timer restarts: keeping 13:00 would send the
    # occurrence that is running again at once.
    assert state.scheduled_at == NOON + timedelta(hours=2)
    assert state.locked_until is None


def test_the_bulk_path_keeps_unchanged_timers_only(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_tasks(hello, {"a": {"n": 1}, "b": {"n": 1}}, interval=timedelta(hours=1))
    pyncette.schedule_task(hello, "b", interval=timedelta(hours=2))  # b's timing changed
    fake_clock.advance(minutes=30)

    refused = pyncette.schedule_tasks(
        hello, {"a": {"n": 2}, "b": {"n": 2}, "c": {"n": 2}}, interval=timedelta(hours=1)
    )

    assert refused == []
    states = {name: pyncette.get_task_state(hello, name) for name in "abc"}
    assert {name: s.scheduled_at for name, s in states.items() if s} == {
        "a": NOON + timedelta(hours=1),  # kept
        "b": NOON + timedelta(minutes=90),  # the timing changed back: first run after now
        "c": NOON + timedelta(minutes=90),  # new
    }
    assert {name: s.args for name, s in states.items() if s} == {n: {"n": 2} for n in "abc"}


def test_context_reschedule_with_the_same_timing_moves_past_the_occurrence_it_ran(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    """A reschedule from inside a run is not a re-schedule of a waiting instance: the stored next
    run is the occurrence just run, so it takes the first occurrence after now."""
    pyncette.schedule_task(hello, "bill", schedule="0 * * * *", args={"reschedule": True})
    fake_clock.advance(hours=1)
    Dispatcher(pyncette.runtime, "beat-1").dispatch(pyncette.definitions())
    (message,) = take_waiting(pyncette.app)
    pyncette.app.tasks[message.headers["task"]].apply(
        kwargs=message.decode()[1], headers=message.headers
    )

    state = pyncette.get_task_state(hello, "bill")
    assert state is not None
    assert state.args["username"] == "again"
    assert state.scheduled_at == NOON + timedelta(hours=2)
