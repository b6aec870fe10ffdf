"""Beat's dispatch and the worker's outcomes, in process: a memory store, kombu's memory
transport as the broker, the task run through Celery's own ``apply`` with the message's headers.
Time is driven by the fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, ExecutionMode, FailureMode, Pyncette, current_context
from celery_pyncette._dispatch import Dispatcher, sync_static
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

Message = tuple[str, dict[str, Any], dict[str, Any]]


def drain(app: Celery) -> list[Message]:
    """Every message waiting on the unit queue: (task name, kwargs, headers)."""
    return [(m.headers["task"], m.decode()[1], m.headers) for m in take_waiting(app)]


def tick(pyncette: Pyncette) -> list[Message]:
    dispatcher = Dispatcher(pyncette.runtime, "beat-1")
    definitions = pyncette.definitions()
    sync_static(pyncette.runtime, definitions, pyncette_now())
    dispatcher.dispatch(definitions)
    return drain(pyncette.app)


def pyncette_now() -> datetime:
    from celery_pyncette import _clock as clock

    return clock.utcnow()


def run(pyncette: Pyncette, message: Message) -> Any:
    name, kwargs, headers = message
    return pyncette.app.tasks[name].apply(kwargs=kwargs, headers=headers)


def static_state(pyncette: Pyncette, name: str) -> Any:
    return pyncette.store.get(InstanceKey(name, 0, STATIC_INSTANCE))


@pytest.fixture
def calls() -> list[Context]:
    return []


def make_task(
    pyncette: Pyncette, calls: list[Context], fail: bool = False, **options: Any
) -> Callable[..., Any]:
    @pyncette.task(name="job", **options)
    def job(context: Context) -> None:
        assert current_context() is context
        calls.append(context)
        if fail:
            raise RuntimeError("boom")

    return job


def test_nothing_is_sent_before_the_first_occurrence(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, schedule="* * * * * */10")

    assert tick(pyncette) == []
    state = static_state(pyncette, "job")
    assert state.next_run == fake_clock.now + timedelta(seconds=10)


def test_a_due_occurrence_is_sent_with_its_lease_and_committed_on_success(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, schedule="* * * * * */10", username="abra")
    tick(pyncette)
    due = fake_clock.advance(seconds=10)

    (message,) = tick(pyncette)
    name, kwargs, headers = message
    assert name == "job"
    assert kwargs == {"username": "abra"}
    header = headers["pyncette"]
    assert header["scheduled_at"] == due.isoformat()
    assert header["lease"]
    assert static_state(pyncette, "job").lease == header["lease"]

    fake_clock.advance(seconds=1)
    run(pyncette, message)

    (context,) = calls
    assert context.scheduled_at == due
    assert context.args == {"username": "abra"}
    state = static_state(pyncette, "job")
    assert state.lease is None
    assert state.next_run == due + timedelta(seconds=10)
    assert state.last_status == "success"


def test_a_leased_occurrence_is_not_sent_twice(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, schedule="* * * * * *")
    tick(pyncette)
    fake_clock.advance(seconds=1)

    assert len(tick(pyncette)) == 1
    assert tick(pyncette) == []


def test_failure_mode_none_keeps_the_lease_until_it_expires(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(
        pyncette, calls, fail=True, schedule="* * * * * *", lease_duration=timedelta(seconds=5)
    )
    tick(pyncette)
    due = fake_clock.advance(seconds=1)
    (message,) = tick(pyncette)

    run(pyncette, message)

    fake_clock.advance(seconds=4)
    assert tick(pyncette) == []
    fake_clock.advance(seconds=2)
    (again,) = tick(pyncette)
    assert again[2]["pyncette"]["scheduled_at"] == due.isoformat()


def test_failure_mode_unlock_makes_it_due_on_the_next_tick(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, fail=True, schedule="* * * * * *", failure_mode=FailureMode.UNLOCK)
    tick(pyncette)
    due = fake_clock.advance(seconds=1)
    (message,) = tick(pyncette)

    run(pyncette, message)

    (again,) = tick(pyncette)
    assert again[2]["pyncette"]["scheduled_at"] == due.isoformat()


def test_failure_mode_commit_advances_and_records_the_failure(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, fail=True, schedule="* * * * * *", failure_mode=FailureMode.COMMIT)
    tick(pyncette)
    due = fake_clock.advance(seconds=1)
    (message,) = tick(pyncette)

    run(pyncette, message)

    state = static_state(pyncette, "job")
    assert state.next_run == due + timedelta(seconds=1)
    assert state.last_status == "failed"
    assert tick(pyncette) == []


def test_at_most_once_is_committed_before_sending_and_never_retried(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(
        pyncette,
        calls,
        fail=True,
        schedule="* * * * * *",
        execution_mode=ExecutionMode.AT_MOST_ONCE,
    )
    tick(pyncette)
    due = fake_clock.advance(seconds=1)

    (message,) = tick(pyncette)

    assert message[2]["pyncette"]["lease"] is None
    state = static_state(pyncette, "job")
    assert state.next_run == due + timedelta(seconds=1)
    assert state.lease is None
    run(pyncette, message)
    assert tick(pyncette) == []


def test_a_message_whose_lease_was_taken_over_does_not_run(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    # The first message waited past pyncette_delivery_timeout (as if the broker had lost it):
    # beat sent the occurrence again under a new lease.
    make_task(pyncette, calls, schedule="* * * * * *", lease_duration=timedelta(seconds=5))
    tick(pyncette)
    fake_clock.advance(seconds=1)
    (stale,) = tick(pyncette)
    fake_clock.advance(seconds=6)
    assert tick(pyncette) == [], "re-sent while its first message waits in the queue"
    fake_clock.advance(seconds=pyncette.settings.delivery_timeout.total_seconds())
    (fresh,) = tick(pyncette)

    run(pyncette, stale)
    run(pyncette, fresh)

    assert len(calls) == 1
    assert static_state(pyncette, "job").last_status == "success"


def test_a_message_released_and_sent_again_runs_once(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    # A publish reported as failed although the broker took it: the claim is released and the
    # occurrence sent again under a new lease, while the first message still waits in the queue.
    make_task(pyncette, calls, schedule="* * * * * *", lease_duration=timedelta(seconds=10))
    tick(pyncette)
    fake_clock.advance(seconds=1)
    (first,) = tick(pyncette)
    key = InstanceKey("job", 0, STATIC_INSTANCE)
    pyncette.store.unlock_many([(key, first[2]["pyncette"]["lease"])])
    (second,) = tick(pyncette)

    run(pyncette, first)
    assert calls == [], "the released message ran"
    run(pyncette, second)

    assert len(calls) == 1


def test_every_execution_takes_a_fresh_lease_for_a_full_lease_duration_from_its_start(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, schedule="* * * * * */30", lease_duration=timedelta(seconds=10))
    tick(pyncette)
    fake_clock.advance(seconds=30)
    (message,) = tick(pyncette)
    sent_lease = message[2]["pyncette"]["lease"]
    started = fake_clock.advance(seconds=25)  # waited in the queue longer than the lease

    seen: list[Any] = []

    @pyncette.middleware
    def look(context: Context, call_next: Callable[[], Any]) -> Any:
        seen.append(static_state(pyncette, "job"))
        return call_next()

    run(pyncette, message)

    (during,) = seen
    assert during.lease not in (None, sent_lease)
    assert during.locked_until == started + timedelta(seconds=10)
    (context,) = calls
    assert context.occurrence is not None
    assert context.occurrence.lease == during.lease
    assert context.locked_until == started + timedelta(seconds=10)
    assert static_state(pyncette, "job").last_status == "success"


def test_missed_runs_coalesce_into_one(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, schedule="* * * * * *")
    tick(pyncette)
    fake_clock.advance(hours=5)

    messages = tick(pyncette)
    assert len(messages) == 1
    run(pyncette, messages[0])

    state = static_state(pyncette, "job")
    assert state.next_run == fake_clock.now + timedelta(seconds=1)


def test_catch_up_replays_every_missed_occurrence(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    make_task(pyncette, calls, schedule="* * * * * *", catch_up=True)
    tick(pyncette)
    fake_clock.advance(seconds=3)

    for _ in range(3):
        (message,) = tick(pyncette)
        run(pyncette, message)

    assert [c.scheduled_at for c in calls] == [
        fake_clock.now - timedelta(seconds=n) for n in (2, 1, 0)
    ]


def test_a_schedule_changed_in_code_applies_at_once(
    fake_clock: FakeClock, app: Celery, calls: list[Context]
) -> None:
    first = Pyncette(app, url="memory://")
    make_task(first, calls, schedule="0 0 * * *")
    tick(first)
    store = first.store
    assert static_state(first, "job").next_run == datetime(2030, 6, 2, tzinfo=fake_clock.now.tzinfo)

    other_app = Celery("unit", broker="memory://", set_as_current=False)
    other_app.conf.update(task_default_queue=app.conf.task_default_queue)
    second = Pyncette(other_app, url="memory://")
    second.runtime.use_store(store)
    make_task(second, calls, schedule="* * * * * */5")
    sync_static(second.runtime, second.definitions(), fake_clock.now)

    assert store.get(InstanceKey("job", 0, STATIC_INSTANCE)).next_run == fake_clock.now + timedelta(
        seconds=5
    )


def test_a_publish_failure_unlocks_the_claim(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_task(pyncette, calls, schedule="* * * * * *")
    tick(pyncette)
    fake_clock.advance(seconds=1)

    dispatcher = Dispatcher(pyncette.runtime, "beat-1")
    # The broker takes none of the batch (the publisher's own failure handling is tested with it).
    monkeypatch.setattr(
        dispatcher.publisher, "publish", lambda messages: list(range(len(messages)))
    )
    dispatcher.dispatch(pyncette.definitions())
    assert static_state(pyncette, "job").lease is None

    assert len(tick(pyncette)) == 1


def test_an_instance_with_broken_stored_data_does_not_hold_up_the_others(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    for name in ("a", "b", "c"):
        pyncette.schedule_task(hello, name, schedule="* * * * * *", username=name)
    broken = pyncette.store.get(InstanceKey("hello", 0, "b"))
    pyncette.store.upsert(
        broken.with_changes(spec={"kind": "nonsense"}), fake_clock.now, force=True
    )
    fake_clock.advance(seconds=1)

    messages = tick(pyncette)

    assert sorted(m[2]["pyncette"]["instance"] for m in messages) == ["a", "c"]
    (quarantined,) = pyncette.store.list_quarantined("hello")
    assert quarantined.key == InstanceKey("hello", 0, "b")
    assert "nonsense" in quarantined.reason


def test_dynamic_instances_run_with_their_arguments_and_once_offs_are_removed(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None:
        calls.append(context)

    pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=2), username="bill")
    pyncette.schedule_task(
        hello, "once", execute_at=fake_clock.now - timedelta(hours=1), username="o"
    )

    messages = tick(pyncette)
    assert [m[2]["pyncette"]["instance"] for m in messages] == ["once"]
    run(pyncette, messages[0])
    assert pyncette.get_task_state(hello, "once") is None

    fake_clock.advance(seconds=2)
    (message,) = tick(pyncette)
    run(pyncette, message)
    assert [(c.instance, c.args["username"]) for c in calls] == [("once", "o"), ("bill", "bill")]
    state = pyncette.get_task_state(hello, "bill")
    assert state is not None
    assert state.scheduled_at == fake_clock.now + timedelta(seconds=2)


def test_context_unschedule_and_reschedule_apply_after_the_run(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None:
        if context.instance == "stop":
            context.unschedule()
        else:
            context.reschedule(interval=timedelta(minutes=5), username="changed")

    pyncette.schedule_task(hello, "stop", interval=timedelta(seconds=1), username="s")
    pyncette.schedule_task(hello, "move", interval=timedelta(seconds=1), username="m")
    fake_clock.advance(seconds=1)

    for message in tick(pyncette):
        run(pyncette, message)

    assert pyncette.get_task_state(hello, "stop") is None
    moved = pyncette.get_task_state(hello, "move")
    assert moved is not None
    assert moved.interval == timedelta(minutes=5)
    assert moved.args == {"username": "changed"}
    assert moved.scheduled_at == fake_clock.now + timedelta(minutes=5)


def test_a_beat_schedule_entry_on_a_plain_task_is_sent_and_committed(
    fake_clock: FakeClock, app: Celery
) -> None:
    seen: list[Any] = []

    @app.task(name="plain.add")
    def add(x: int, y: int) -> int:
        seen.append(current_context())
        return x + y

    app.conf.beat_schedule = {
        "add-every-2s": {"task": "plain.add", "schedule": 2.0, "args": (1, 2)}
    }
    pyncette = Pyncette(app, url="memory://")
    tick(pyncette)
    fake_clock.advance(seconds=2)

    (message,) = tick(pyncette)
    name, _kwargs, headers = message
    assert name == "plain.add"
    result = app.tasks[name].apply(args=(1, 2), headers=headers)

    assert result.get() == 3
    assert seen[0] is not None
    assert seen[0].task.name == "add-every-2s"
    state = static_state(pyncette, "add-every-2s")
    assert state.lease is None
    assert state.next_run == fake_clock.now + timedelta(seconds=2)
    pyncette.close()


def test_a_middleware_can_swallow_a_failure_which_then_counts_as_success(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    seen: list[str] = []

    @pyncette.middleware
    def swallow(context: Context, call_next: Callable[[], Any]) -> Any:
        try:
            return call_next()
        except RuntimeError as exc:
            seen.append(str(exc))
            return None

    make_task(pyncette, calls, fail=True, schedule="* * * * * *")
    tick(pyncette)
    fake_clock.advance(seconds=1)
    (message,) = tick(pyncette)

    run(pyncette, message).get()

    assert seen == ["boom"]
    assert static_state(pyncette, "job").last_status == "success"


def test_a_fixture_that_fails_to_set_up_fails_the_execution_loudly(
    fake_clock: FakeClock, pyncette: Pyncette, calls: list[Context]
) -> None:
    @pyncette.fixture(name="db")
    def broken() -> Any:
        raise ConnectionError("database unreachable")
        yield  # pragma: no cover

    make_task(pyncette, calls, schedule="* * * * * *", failure_mode=FailureMode.UNLOCK)
    tick(pyncette)
    fake_clock.advance(seconds=1)
    (message,) = tick(pyncette)

    with pytest.raises(ConnectionError, match="unreachable"):
        run(pyncette, message).get()

    assert calls == []
    assert static_state(pyncette, "job").lease is None, "UNLOCK applies to a fixture failure"
