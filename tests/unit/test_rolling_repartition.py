"""A repartition during a rolling deploy loses nothing.

An "old" process (code declaring ``partition_count=4``, started before the repartition, so its
partition count was checked and cached) and a "new" one (``partition_count=2``) share one store
(a SQLite file, Redis and PostgreSQL); the operator runs the repartition in between. The
old process must neither write an instance where the new count's beats do not poll it, nor fail
silently.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from celery_pyncette import ConfigurationError, Context, Pyncette, TaskLockedError
from celery_pyncette import _routing as routing
from celery_pyncette._dispatch import Dispatcher
from celery_pyncette._extension import default_partition_selector
from celery_pyncette._partitions import (
    RANGE_SELECTOR,
    PartitionLayout,
    repartition,
    stored_layout,
)
from celery_pyncette._records import TASKS_TASK
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from tests.backends import postgres as postgres_backend
from tests.backends import redis as redis_backend
from tests.support.messages import take_waiting
from tests.support.servers import require_server
from tests.support.servers.local_redis import delete_namespace

PAST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def partition(count: int, name: str) -> int:
    return default_partition_selector(count, name)


# The example: under 4 partitions "user1" is in a partition (2) that 2 partitions lack.
assert partition(4, "user1") == 2


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        return redis_backend.URL
    if request.param == "postgresql":
        postgres_backend.require()
        return postgres_backend.URL
    return f"sqlite:///{tmp_path}/store.sqlite3"


class Processes:
    """Pyncette objects ("processes") on one store and namespace, closed at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.namespace = f"r{uuid.uuid4().hex[:10]}"
        self.opened: list[Pyncette] = []

    def start(self, count: int) -> tuple[Pyncette, Any]:
        app = Celery(f"p{len(self.opened)}", broker="memory://", set_as_current=False)
        app.conf.task_default_queue = f"q-{uuid.uuid4().hex[:8]}"
        extension = Pyncette(app, url=self.url, namespace=self.namespace)
        self.opened.append(extension)

        @extension.partitioned_task(partition_count=count, name="spread")
        def spread(context: Context) -> None: ...

        extension.check_partitions(extension.definition("spread"))  # at start, as beat does
        return extension, spread

    def close(self) -> None:
        for extension in self.opened:
            extension.close()
            extension.app.close()
        if self.url.startswith("redis"):
            cleaner = redis.Redis.from_url(self.url, socket_timeout=10)
            try:
                delete_namespace(cleaner, self.namespace)
            finally:
                cleaner.close()
        elif self.url.startswith("postgresql"):
            postgres_backend.drop_tables(self.namespace)


@pytest.fixture
def processes(url: str) -> Iterator[Processes]:
    created = Processes(url)
    yield created
    created.close()


def where(extension: Pyncette, name: str, partitions: int = 4) -> list[int]:
    store = extension.store
    return [p for p in range(partitions) if store.get(InstanceKey("spread", p, name)) is not None]


def move_to_two(new: Pyncette) -> None:
    result = repartition(new.store, new.definition("spread"), 2, new.now())
    assert result.complete


def test_an_old_process_routes_a_new_instance_by_the_repartitioned_count(
    processes: Processes,
) -> None:
    old, spread_old = processes.start(4)
    old.schedule_task(spread_old, "before", interval=timedelta(minutes=5))
    new, _ = processes.start(4)  # the operator's process, before the new code
    move_to_two(new)

    state = old.schedule_task(spread_old, "user1", execute_at=PAST)

    assert where(old, "user1") == [partition(2, "user1")], "not left in its partition under 4"
    assert state.instance == "user1"
    found = old.get_task_state(spread_old, "user1")
    assert found is not None
    assert found.partition == partition(2, "user1")
    # a process on the new code finds it, and its beat sends it
    newer, spread_newer = processes.start(2)
    assert newer.get_task_state(spread_newer, "user1") is not None
    Dispatcher(newer.runtime, "beat-new").dispatch(newer.router.polled(newer.definitions()))
    sent = [m.headers["pyncette"]["instance"] for m in take_waiting(newer.app)]
    assert sent == ["user1"]


def test_an_old_process_finds_and_removes_instances_the_repartition_moved(
    processes: Processes,
) -> None:
    old, spread_old = processes.start(4)
    old.schedule_task(spread_old, "user1", interval=timedelta(minutes=5))
    new, _ = processes.start(4)
    move_to_two(new)

    state = old.get_task_state(spread_old, "user1")
    assert state is not None
    assert state.partition == partition(2, "user1")
    assert old.unschedule_task(spread_old, "user1") is True
    assert where(old, "user1") == []


def test_an_old_process_bulk_write_after_a_repartition_lands_in_polled_partitions(
    processes: Processes,
) -> None:
    old, spread_old = processes.start(4)
    old.schedule_task(spread_old, "warm-up", interval=timedelta(minutes=5))
    new, _ = processes.start(4)
    move_to_two(new)
    names = [f"user{i}" for i in range(40)]

    locked = old.schedule_tasks(spread_old, {n: {"n": n} for n in names}, execute_at=PAST)

    assert locked == []
    for name in names:
        assert where(old, name) == [partition(2, name)], name
    assert len(old.list_task_states(spread_old, limit=100).tasks) == len(names) + 1


def test_an_old_process_rescheduling_with_the_same_timing_keeps_the_moved_timer(
    processes: Processes,
) -> None:
    """The old process writes under its cached count (a fresh copy, timer restarted), then finds
    the repartition and moves the copy onto the instance already moved: that one keeps its own
    next run, and the state returned says so."""
    old, spread_old = processes.start(4)
    first = old.schedule_task(spread_old, "user1", interval=timedelta(hours=1), n=1)
    new, _ = processes.start(4)
    move_to_two(new)

    again = old.schedule_task(spread_old, "user1", interval=timedelta(hours=1), n=2)

    assert where(old, "user1") == [partition(2, "user1")]
    stored = old.get_task_state(spread_old, "user1")
    assert stored is not None
    assert (stored.scheduled_at, stored.args) == (first.scheduled_at, {"n": 2})
    assert (again.scheduled_at, again.partition) == (first.scheduled_at, partition(2, "user1"))


def test_an_old_process_bulk_rescheduling_with_the_same_timing_keeps_the_timers(
    processes: Processes,
) -> None:
    old, spread_old = processes.start(4)
    names = ["user1", "a", "b", "c"]
    old.schedule_tasks(spread_old, {n: {"n": 1} for n in names}, interval=timedelta(hours=1))
    before = {n: old.get_task_state(spread_old, n) for n in names}
    new, _ = processes.start(4)
    move_to_two(new)

    assert (
        old.schedule_tasks(spread_old, {n: {"n": 2} for n in names}, interval=timedelta(hours=1))
        == []
    )

    for name in names:
        assert where(old, name) == [partition(2, name)], name
        state, earlier = old.get_task_state(spread_old, name), before[name]
        assert state is not None
        assert earlier is not None
        assert (state.scheduled_at, state.args) == (earlier.scheduled_at, {"n": 2}), name


def test_the_new_count_is_stored_before_anything_moves(processes: Processes) -> None:
    old, spread_old = processes.start(4)
    for name in ("a", "b", "c", "d", "user1"):
        old.schedule_task(spread_old, name, interval=timedelta(minutes=5))
    store = old.store
    writes: list[InstanceKey] = []
    real = store.upsert

    def recording(
        record: InstanceRecord, now: datetime, force: bool = False, *, keep_next_run: bool = False
    ) -> datetime:
        writes.append(record.key)
        return real(record, now, force, keep_next_run=keep_next_run)

    store.upsert = recording  # type: ignore[method-assign]
    try:
        repartition(store, old.definition("spread"), 2, old.now())
    finally:
        store.upsert = real  # type: ignore[method-assign]

    assert writes[0] == InstanceKey(TASKS_TASK, 0, "spread")
    assert any(key.task == "spread" for key in writes[1:])


def test_a_beat_of_the_old_code_polls_the_partitions_a_growth_created(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing, "REFRESH_EVERY", 0.0)
    old, spread_old = processes.start(2)
    old.schedule_task(spread_old, "x", interval=timedelta(minutes=5))
    (before,) = [d for d in old.router.polled(old.definitions()) if d.name == "spread"]
    operator, _ = processes.start(2)
    assert repartition(operator.store, operator.definition("spread"), 4, operator.now()).complete

    (after,) = [d for d in old.router.polled(old.definitions()) if d.name == "spread"]

    assert before.polled_partitions == (0, 1)
    assert after.polled_partitions == (0, 1, 2, 3)


def test_a_running_instance_left_behind_is_still_found_and_polled(
    processes: Processes, caplog: pytest.LogCaptureFixture
) -> None:
    old, spread_old = processes.start(4)
    old.schedule_task(spread_old, "user1", execute_at=PAST)
    claimed = old.store.claim_due(
        "spread", partition(4, "user1"), old.now(), 10, timedelta(minutes=5), "beat"
    )
    assert [r.key.instance for r in claimed] == ["user1"]
    new, _ = processes.start(4)

    result = repartition(new.store, new.definition("spread"), 2, new.now())

    assert result.locked == ["user1"]
    assert stored_layout(new.store, "spread") == PartitionLayout(
        2, moving_from=(4,), selector=RANGE_SELECTOR
    )
    with caplog.at_level(logging.WARNING, "celery_pyncette.partitions"):
        newer, spread_newer = processes.start(2)
    assert "repartition of spread is not complete" in caplog.text
    state = newer.get_task_state(spread_newer, "user1")
    assert state is not None
    assert state.partition == partition(
        4, "user1"
    )  # still where it runs, until the repartition is run again
    (polled,) = [d for d in newer.router.polled(newer.definitions()) if d.name == "spread"]
    assert partition(4, "user1") in polled.polled_partitions


def test_old_code_started_after_the_repartition_refuses_naming_both_counts(
    processes: Processes,
) -> None:
    first, spread_first = processes.start(4)
    first.schedule_task(spread_first, "user1", interval=timedelta(minutes=5))
    move_to_two(first)

    with pytest.raises(ConfigurationError, match=r"partition_count=4 .* stored in 2 partitions"):
        processes.start(4)


def test_replacing_an_instance_left_behind_keeps_one_copy(processes: Processes) -> None:
    old, spread_old = processes.start(4)
    old.schedule_task(spread_old, "user1", execute_at=PAST)
    old.schedule_task(spread_old, "idle", execute_at=PAST)
    claimed = old.store.claim_due(
        "spread", partition(4, "user1"), old.now(), 10, timedelta(minutes=5), "beat"
    )
    assert "user1" in [r.key.instance for r in claimed]
    assert not repartition(old.store, old.definition("spread"), 2, old.now()).complete
    new, spread_new = processes.start(2)

    with pytest.raises(TaskLockedError):
        new.schedule_task(spread_new, "user1", interval=timedelta(minutes=5))
    assert where(new, "user1") == [partition(4, "user1")], "the running copy stays, no second copy"

    new.schedule_task(spread_new, "user1", interval=timedelta(minutes=5), force=True)
    assert where(new, "user1") == [partition(2, "user1")], "replaced: one copy, where it belongs"
