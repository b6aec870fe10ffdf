"""The run-time API of the extension: dynamic instances, pages, strikes, async twins."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette, TaskLockedError
from celery_pyncette._extension import default_partition_selector
from celery_pyncette.stores.base import InstanceKey, Strike
from tests.conftest import FakeClock


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def test_schedule_task_writes_before_it_returns_and_first_runs_after_now(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    state = pyncette.schedule_task(hello, "bill", schedule="0 * * * *", username="bill")

    stored = pyncette.get_task_state(hello, "bill")
    assert stored == state
    assert stored is not None
    assert stored.scheduled_at == datetime(2030, 6, 1, 13, tzinfo=timezone.utc)
    assert stored.schedule == "0 * * * *"
    assert stored.args == {"username": "bill"}


def test_invalid_input_writes_nothing(pyncette: Pyncette, hello: object) -> None:
    for bad in (
        {"schedule": "not a cron"},
        {"schedule": "* * * * *", "timezone": "Nowhere/Land"},
        {"interval": timedelta(0)},
        {"schedule": "* * * * *", "blob": object()},
        {},
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - the messages are checked elsewhere
            pyncette.schedule_task(hello, "x", **bad)
    with pytest.raises(ValueError, match="instance name"):
        pyncette.schedule_task(hello, "", schedule="* * * * *")
    with pytest.raises(ValueError, match="bytes"):
        pyncette.schedule_task(hello, "é" * 600, schedule="* * * * *")
    assert pyncette.list_task_states(hello).tasks == []


def test_replacing_a_running_instance_needs_force(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    pyncette.store.claim_due("hello", 0, fake_clock.now, 10, timedelta(seconds=30), "beat")

    with pytest.raises(TaskLockedError):
        pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=5))
    pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=5), force=True)

    state = pyncette.get_task_state(hello, "bill")
    assert state is not None
    assert state.interval == timedelta(seconds=5)


def test_unschedule_reports_whether_the_instance_existed(pyncette: Pyncette, hello: object) -> None:
    pyncette.schedule_task(hello, "bill", schedule="* * * * *")

    assert pyncette.unschedule_task(hello, "bill") is True
    assert pyncette.unschedule_task(hello, "bill") is False


def test_a_static_task_cannot_be_scheduled_dynamically(pyncette: Pyncette) -> None:
    @pyncette.task(schedule="* * * * *", name="static")
    def static(context: Context) -> None: ...

    with pytest.raises(ValueError, match="static"):
        pyncette.schedule_task(static, "x", schedule="* * * * *")


def test_pages_of_a_partitioned_task_return_every_instance_once(pyncette: Pyncette) -> None:
    @pyncette.partitioned_task(partition_count=4, name="spread")
    def spread(context: Context) -> None: ...

    names = [f"user-{i:03d}" for i in range(57)]
    for name in names:
        pyncette.schedule_task(spread, name, schedule="* * * * *")
    seen: list[str] = []
    token = None
    while True:
        page = pyncette.list_task_states(spread, limit=10, continuation_token=token)
        assert len(page.tasks) <= 10
        seen.extend(s.instance or "" for s in page.tasks)
        token = page.continuation_token
        if token is None:
            break

    assert sorted(seen) == names
    partitions = {pyncette.get_task_state(spread, n).partition for n in names}  # type: ignore[union-attr]
    assert partitions == {0, 1, 2, 3}


def test_the_default_partition_selector_is_stable() -> None:
    # Pinned regression values (SHA-1 of the UTF-8 name, big-endian, as a range of the count):
    # changing them would silently move every stored instance to another partition.
    names = ("bill", "ana", "user-1", "ünï")
    assert [default_partition_selector(32, n) for n in names] == [24, 14, 19, 2]
    assert [default_partition_selector(1000, n) for n in names] == [775, 445, 617, 79]


def test_a_bad_continuation_token_is_refused(pyncette: Pyncette, hello: object) -> None:
    with pytest.raises(ValueError, match="continuation_token"):
        pyncette.list_task_states(hello, continuation_token="garbage!")


def test_strikes_are_validated_and_stored(pyncette: Pyncette, hello: object) -> None:
    pyncette.strike(hello)
    pyncette.strike(None, "customer_id", "==", "12345")

    assert sorted(pyncette.strikes(), key=repr) == sorted(
        [Strike("hello"), Strike(None, "customer_id", "==", "12345")], key=repr
    )
    assert pyncette.restore(hello) is True
    with pytest.raises(ValueError, match="operator"):
        pyncette.strike(hello, "username", "~=", "x")
    with pytest.raises(ValueError, match="needs a task"):
        pyncette.strike(None)


def test_async_twins_do_what_the_sync_calls_do(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    async def scenario() -> None:
        state = await pyncette.aschedule_task(hello, "bill", schedule="0 * * * *", username="bill")
        assert await pyncette.aget_task_state(hello, "bill") == state
        page = await pyncette.alist_task_states(hello, limit=5)
        assert [s.instance for s in page.tasks] == ["bill"]
        assert await pyncette.aunschedule_task(hello, "bill") is True
        assert await pyncette.aget_task_state(hello, "bill") is None

    asyncio.run(scenario())


def test_one_extension_per_app(app: Celery, pyncette: Pyncette) -> None:
    from celery_pyncette import ConfigurationError

    with pytest.raises(ConfigurationError, match="already"):
        Pyncette(app)


def test_the_store_is_built_lazily(app: Celery) -> None:
    extension = Pyncette(app, url="memory://")

    assert extension.runtime.opened_store is None
    assert extension.store.get(InstanceKey("x", 0, "y")) is None


def test_schedule_tasks_validates_everything_before_writing(
    pyncette: Pyncette, hello: object
) -> None:
    instances = {f"u{i}": {"n": i} for i in range(1200)}
    instances["bad"] = {"n": object()}

    with pytest.raises(ValueError, match="'bad'"):
        pyncette.schedule_tasks(hello, instances, schedule="* * * * *")
    assert pyncette.list_task_states(hello).tasks == []

    del instances["bad"]
    assert pyncette.schedule_tasks(hello, instances, schedule="* * * * *") == []
    assert pyncette.store.count_instances("hello", 0) == 1200


def test_schedule_tasks_reports_running_instances_it_left_alone(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_tasks(hello, {"a": {}, "b": {}}, interval=timedelta(seconds=1))
    fake_clock.advance(seconds=1)
    pyncette.store.claim_due("hello", 0, fake_clock.now, 1, timedelta(seconds=30), "beat")

    assert pyncette.schedule_tasks(hello, {"a": {}, "b": {}}, interval=timedelta(seconds=9)) == [
        "a"
    ]


def test_scatter_spreads_once_offs_evenly_over_the_window(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.scatter(hello, ["a", "b", "c", "d"], over=timedelta(minutes=4))

    times = [pyncette.get_task_state(hello, n).execute_at for n in "abcd"]  # type: ignore[union-attr]
    start = fake_clock.now
    assert times == [start + timedelta(seconds=s) for s in (30, 90, 150, 210)]


def test_scatter_of_one_instance_lands_at_the_midpoint(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    pyncette.scatter(hello, {"only": {"k": 1}}, over=timedelta(hours=2))

    state = pyncette.get_task_state(hello, "only")
    assert state is not None
    assert state.execute_at == fake_clock.now + timedelta(hours=1)
    assert state.args == {"k": 1}


def test_scatter_jitter_never_places_an_instance_before_start(
    fake_clock: FakeClock, pyncette: Pyncette, hello: object
) -> None:
    start = fake_clock.now + timedelta(minutes=10)
    names = [f"n{i}" for i in range(200)]

    pyncette.scatter(
        hello, names, over=timedelta(seconds=200), start=start, jitter=timedelta(seconds=30)
    )

    times = [pyncette.get_task_state(hello, n).execute_at for n in names]  # type: ignore[union-attr]
    assert all(t is not None and t >= start for t in times)
    assert max(t for t in times if t) <= start + timedelta(seconds=230)


def test_a_bulk_write_that_fails_part_way_reports_what_was_written(
    pyncette: Pyncette, hello: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery_pyncette import BulkWriteError, StoreError

    store = pyncette.store
    real = store.upsert_many
    calls = {"n": 0}

    def flaky(records: list, now: object, force: bool = False, **options: bool) -> list:
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("connection lost")
        return real(records, now, force, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "upsert_many", flaky)

    with pytest.raises(BulkWriteError) as raised:
        pyncette.scatter(hello, [f"n{i:04d}" for i in range(1200)], over=timedelta(hours=1))

    assert raised.value.written == [f"n{i:04d}" for i in range(500)]
    assert store.count_instances("hello", 0) == 500
