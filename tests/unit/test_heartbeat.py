"""``context.heartbeat()`` and ``@with_heartbeat()`` against a memory store, in process."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest

from celery_pyncette import Context, LeaseLostError, Pyncette, with_heartbeat
from celery_pyncette._definitions import ExecutionMode, TaskDefinition
from celery_pyncette._dispatch import Dispatcher, sync_static
from celery_pyncette._occurrence import Occurrence
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

LEASE = timedelta(milliseconds=200)


def leased_context(pyncette: Pyncette) -> Context:
    """A context holding a real lease on a stored dynamic instance."""
    store = pyncette.store
    now = pyncette.now()
    key = InstanceKey("beating", 0, "one")
    store.upsert(InstanceRecord(key, now, {"kind": "interval", "seconds": 60.0}, {}), now)
    (claimed,) = store.claim_due("beating", 0, now, 1, LEASE, "beat")
    definition = TaskDefinition(
        name="beating", celery_name="beating", schedule=None, dynamic=True, lease_duration=LEASE
    )
    occurrence = Occurrence(
        task="beating",
        instance="one",
        partition=0,
        scheduled_at=now,
        mode=ExecutionMode.AT_LEAST_ONCE,
        lease=claimed.lease,
        locked_until=claimed.locked_until,
    )
    return Context(runtime=pyncette.runtime, task=definition, args={}, occurrence=occurrence)


def test_a_heartbeat_extends_the_lease(pyncette: Pyncette) -> None:
    context = leased_context(pyncette)
    before = pyncette.store.get(InstanceKey("beating", 0, "one"))

    context.heartbeat()

    after = pyncette.store.get(InstanceKey("beating", 0, "one"))
    assert before is not None
    assert after is not None
    assert after.locked_until is not None
    assert before.locked_until is not None
    assert after.locked_until > before.locked_until


def test_a_heartbeat_after_the_instance_was_unscheduled_raises(pyncette: Pyncette) -> None:
    context = leased_context(pyncette)
    pyncette.store.delete(InstanceKey("beating", 0, "one"))

    with pytest.raises(LeaseLostError):
        context.heartbeat()


def test_with_heartbeat_keeps_a_sync_task_leased_and_flags_a_loss(pyncette: Pyncette) -> None:
    context = leased_context(pyncette)
    key = InstanceKey("beating", 0, "one")
    extended = threading.Event()

    @with_heartbeat()
    def job(context: Context) -> bool:
        first = pyncette.store.get(key)
        assert first is not None
        # Wait (bounded) until a background heartbeat has moved the lease, then lose it.
        for _ in range(200):
            current = pyncette.store.get(key)
            if current is not None and current.locked_until != first.locked_until:
                extended.set()
                break
            threading.Event().wait(0.01)
        pyncette.store.delete(key)
        for _ in range(200):
            if context.lease_lost:
                break
            threading.Event().wait(0.01)
        return context.lease_lost

    assert job(context) is True
    assert extended.is_set()


def test_with_heartbeat_can_cancel_an_async_task_that_lost_its_lease(pyncette: Pyncette) -> None:
    context = leased_context(pyncette)
    pyncette.store.delete(InstanceKey("beating", 0, "one"))

    @with_heartbeat(cancel_on_lease_lost=True)
    async def job(context: Context) -> str:
        await asyncio.sleep(30)  # the heartbeat cancels this long before
        return "finished"

    async def scenario() -> None:
        with pytest.raises(LeaseLostError, match="cancelled") as raised:
            await asyncio.wait_for(job(context), timeout=10)
        assert isinstance(raised.value.__cause__, asyncio.CancelledError)

    asyncio.run(scenario())
    assert context.lease_lost is True


def test_with_heartbeat_refuses_a_bad_ratio() -> None:
    with pytest.raises(ValueError, match="lease_remaining_ratio"):
        with_heartbeat(lease_remaining_ratio=1.5)


@pytest.mark.parametrize(
    "ratio", [True, False, "0.5", None, 0, 1, 0.0, 1.0, -0.5, float("nan"), float("inf")]
)
def test_with_heartbeat_refuses_a_ratio_that_is_not_a_number_strictly_between_0_and_1(
    ratio: object,
) -> None:
    with pytest.raises(ValueError, match="lease_remaining_ratio"):
        with_heartbeat(lease_remaining_ratio=ratio)  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", [0.25, Fraction(1, 3), 0.999])
def test_with_heartbeat_takes_any_real_ratio_strictly_between_0_and_1(ratio: float) -> None:
    @with_heartbeat(lease_remaining_ratio=ratio)
    def job(context: Context) -> None: ...

    assert callable(job)


def test_with_heartbeat_refuses_a_cancel_flag_that_is_not_a_bool() -> None:
    with pytest.raises(ValueError, match="cancel_on_lease_lost"):
        with_heartbeat(cancel_on_lease_lost="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "extended"), [(ExecutionMode.AT_MOST_ONCE, False), (ExecutionMode.AT_LEAST_ONCE, True)]
)
def test_a_heartbeat_of_an_at_most_once_run_is_a_no_op(
    fake_clock: FakeClock,
    pyncette: Pyncette,
    monkeypatch: pytest.MonkeyPatch,
    mode: ExecutionMode,
    extended: bool,
) -> None:
    """Through beat's dispatch and the worker path: an at-most-once run holds no lease, so its
    heartbeat writes nothing and raises nothing (as in Pyncette); an at-least-once one extends."""
    store = pyncette.store
    writes: list[InstanceKey] = []
    real_extend = store.extend_lease

    def spy(key: InstanceKey, *args: Any, **kwargs: Any) -> Any:
        writes.append(key)
        return real_extend(key, *args, **kwargs)

    seen: list[tuple[Any, Any, int]] = []

    @pyncette.task(name="beats", schedule="* * * * * *", execution_mode=mode)
    def beats(context: Context) -> None:
        before, writes_before = context.locked_until, len(writes)
        fake_clock.advance(seconds=5)
        context.heartbeat()
        seen.append((before, context.locked_until, len(writes) - writes_before))

    dispatcher = Dispatcher(pyncette.runtime, "beat-1")
    definitions = pyncette.definitions()
    sync_static(pyncette.runtime, definitions, fake_clock.now)
    fake_clock.advance(seconds=1)
    dispatcher.dispatch(definitions)
    (message,) = take_waiting(pyncette.app)
    monkeypatch.setattr(store, "extend_lease", spy)

    result = pyncette.app.tasks["beats"].apply(kwargs=message.decode()[1], headers=message.headers)

    assert result.successful(), result.traceback
    ((before, after, heartbeat_writes),) = seen
    if extended:
        assert heartbeat_writes == 1
        assert after == fake_clock.now + pyncette.runtime.settings.lease_duration
        state = store.get(InstanceKey("beats", 0, STATIC_INSTANCE))
        assert state is not None
        assert state.last_status == "success"
    else:
        assert writes == [], "neither the worker nor the heartbeat touched a lease"
        assert before is None
        assert after is None
