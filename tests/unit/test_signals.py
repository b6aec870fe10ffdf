"""The scheduler's signals, in process: beat's dispatch and the worker's outcomes send them with
their documented arguments, and a receiver that raises stops neither."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.utils.dispatch import Signal

from celery_pyncette import FailureMode, Pyncette, signals
from celery_pyncette._quarantine import announce
from celery_pyncette.stores.base import InstanceKey
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import run, tick

ALL = {name: getattr(signals, name) for name in signals.__all__}


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every signal sent while the test runs: (name, arguments with the sender)."""
    received: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for name, signal in ALL.items():

        def receiver(
            sender: Any = None, signal: Signal | None = None, _name: str = name, **kw: Any
        ) -> None:
            received.append((_name, {"sender": sender, **kw}))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield received
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def names(heard: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in heard]


def test_a_sent_and_run_occurrence_is_claimed_sent_and_settled(
    pyncette: Pyncette, fake_clock: FakeClock, heard: list[tuple[str, dict[str, Any]]]
) -> None:
    @pyncette.dynamic_task(name="greet")
    def greet(context: Any) -> None:
        pass

    pyncette.schedule_task(greet, "ann", interval=timedelta(minutes=1))
    fake_clock.advance(minutes=1)
    (message,) = tick(pyncette)
    run(pyncette, message)

    assert names(heard) == ["occurrence_claimed", "occurrence_sent", "occurrence_settled"]
    claimed, sent, settled = (arguments for _, arguments in heard)
    occurrence = {"sender": "greet", "task": "greet", "instance": "ann", "partition": 0}
    assert claimed.items() >= occurrence.items()
    assert claimed["scheduled_at"] == sent["scheduled_at"] == settled["scheduled_at"]
    assert claimed["scheduled_at"].tzinfo is not None
    assert claimed["lease"] == message[2]["pyncette"]["lease"]
    assert sent.items() >= occurrence.items()
    assert "lease" not in sent
    assert settled["outcome"] == "success"


def test_failures_settle_as_their_failure_mode_says(
    pyncette: Pyncette, fake_clock: FakeClock, heard: list[tuple[str, dict[str, Any]]]
) -> None:
    for mode in (FailureMode.UNLOCK, FailureMode.COMMIT, FailureMode.NONE):

        @pyncette.task(name=f"fails-{mode.name}", interval=timedelta(minutes=1), failure_mode=mode)
        def fails(context: Any) -> None:
            raise RuntimeError("boom")

    tick(pyncette)  # schedules the static tasks
    fake_clock.advance(minutes=1)
    for message in tick(pyncette):
        run(pyncette, message)

    outcomes = {a["task"]: a["outcome"] for n, a in heard if n == "occurrence_settled"}
    assert outcomes == {"fails-UNLOCK": "unlocked", "fails-COMMIT": "failed", "fails-NONE": "kept"}
    instances = {a["instance"] for n, a in heard if n == "occurrence_settled"}
    assert instances == {None}, "a static task's instance is None"


def test_strikes_found_by_beat_and_by_the_worker_are_told_apart(
    pyncette: Pyncette, fake_clock: FakeClock, heard: list[tuple[str, dict[str, Any]]]
) -> None:
    @pyncette.dynamic_task(name="bill")
    def bill(context: Any) -> None:
        pass

    pyncette.schedule_task(bill, "c1", interval=timedelta(minutes=1), customer=1)
    pyncette.schedule_task(bill, "c2", interval=timedelta(minutes=1), customer=2)
    fake_clock.advance(minutes=1)
    pyncette.strike(bill, "customer", "==", 1)
    fake_clock.advance(seconds=5)  # the strike view refreshes within the poll interval
    (message,) = tick(pyncette)  # c1 struck by beat, c2 sent
    pyncette.strike(bill, "customer", "==", 2)
    fake_clock.advance(seconds=5)
    run(pyncette, message)  # struck by the worker

    struck = [a for n, a in heard if n == "occurrence_struck"]
    assert [(a["instance"], a["by"]) for a in struck] == [("c1", "beat"), ("c2", "worker")]
    assert struck[0]["strike"].value == 1
    assert struck[1]["strike"].operator == "=="
    settled = [a["outcome"] for n, a in heard if n == "occurrence_settled"]
    assert settled == ["struck"]


def test_a_lost_lease_is_signalled(
    pyncette: Pyncette, fake_clock: FakeClock, heard: list[tuple[str, dict[str, Any]]]
) -> None:
    @pyncette.dynamic_task(name="slow")
    def slow(context: Any) -> None:
        pass

    pyncette.schedule_task(slow, "x", interval=timedelta(minutes=1))
    fake_clock.advance(minutes=1)
    (message,) = tick(pyncette)
    run(pyncette, message)
    run(pyncette, message)  # delivered again: the first run replaced its lease, so it is skipped

    lost = [a for n, a in heard if n == "lease_lost"]
    assert [(a["task"], a["instance"]) for a in lost] == [("slow", "x")]


def test_a_quarantined_record_is_signalled(heard: list[tuple[str, dict[str, Any]]]) -> None:
    key = InstanceKey("greet", 3, "bad")
    announce(key, "its stored schedule cannot be decoded", "found by beat")

    assert heard == [
        (
            "record_quarantined",
            {
                "sender": "greet",
                "key": key,
                "reason": "its stored schedule cannot be decoded",
                "found_by": "found by beat",
            },
        )
    ]


def test_a_receiver_that_raises_stops_neither_dispatch_nor_settlement(
    pyncette: Pyncette, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_: Any) -> None:
        raise RuntimeError("receiver bug")

    for signal in ALL.values():
        signal.connect(broken, weak=False)
    try:

        @pyncette.dynamic_task(name="greet")
        def greet(context: Any) -> None:
            pass

        pyncette.schedule_task(greet, "ann", interval=timedelta(minutes=1))
        fake_clock.advance(minutes=1)
        (message,) = tick(pyncette)
        run(pyncette, message)
    finally:
        for signal in ALL.values():
            signal.disconnect(broken)

    state = pyncette.get_task_state(greet, "ann")
    assert state is not None
    assert state.last_status == "success"
    assert "receiver bug" in caplog.text
