"""On every store: instances placed by the modulo selector of 0.1.0 move to Pyncette's range
selector with ``repartition``, after the default selector refused the unmoved store.

Nothing is orphaned (every instance ends where a beat polling the task's partitions claims it)
and nothing runs twice (one copy of each; a running instance stays until it finished).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from celery import Celery

from celery_pyncette import ConfigurationError, Context, Pyncette, TaskLockedError
from celery_pyncette._extension import default_partition_selector
from celery_pyncette._partitions import (
    RANGE_SELECTOR,
    PartitionLayout,
    modulo_partition_selector,
    repartition,
    stored_layout,
)
from celery_pyncette._records import partition_count_key
from celery_pyncette.beat import Scheduler
from celery_pyncette.stores.base import InstanceKey, Store
from tests.support.legacy_layout import where, write_legacy_store

pytestmark = pytest.mark.timeout(120)

PAST = datetime(2000, 1, 1, tzinfo=timezone.utc)
COUNT = 4
NAMES = [f"user-{i}" for i in range(30)]
# the one that runs during the move: due now, the others next hour
BUSY = next(
    n for n in NAMES if modulo_partition_selector(COUNT, n) != default_partition_selector(COUNT, n)
)


class Process:
    """A process of this version (default selector) on the test's store."""

    def __init__(self, store: Store) -> None:
        self.app = Celery("selector", broker="memory://", set_as_current=False)
        self.app.conf.task_default_queue = f"q-{uuid.uuid4().hex[:8]}"
        self.pyncette = Pyncette(self.app, url="memory://")
        self.pyncette.runtime.use_store(store)

        @self.pyncette.partitioned_task(partition_count=COUNT, name="spread")
        def spread(context: Context) -> None: ...

        self.task = spread

    def close(self) -> None:
        self.pyncette.close()
        self.app.close()


@pytest.fixture
def processes(store: Store) -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


def start(store: Store, started: list[Process]) -> Process:
    process = Process(store)
    started.append(process)
    return process


def test_a_store_placed_by_the_modulo_selector_is_refused_then_moved_by_repartition(
    store: Store, processes: list[Process]
) -> None:
    now = start(store, processes).pyncette.now()
    placed = write_legacy_store(store, "spread", COUNT, NAMES, now + timedelta(hours=1), now)
    busy_key = InstanceKey("spread", placed[BUSY], BUSY)
    store.upsert(store.get(busy_key).with_changes(next_run=PAST), now)  # type: ignore[union-attr]
    (claimed,) = store.claim_due("spread", placed[BUSY], now, 10, timedelta(minutes=5), "beat")
    assert claimed.key == busy_key

    refused = start(store, processes)
    with pytest.raises(ConfigurationError, match=r"pyncette repartition spread --to 4"):
        refused.pyncette.schedule_task(refused.task, "someone", interval=timedelta(minutes=5))
    with pytest.raises(ConfigurationError, match=r"SHA-1 modulo"):
        Scheduler(refused.app).tick()
    assert stored_layout(store, "spread") == PartitionLayout(COUNT), "the refusal wrote nothing"

    operator = start(store, processes)
    definition = operator.pyncette.definition("spread")
    first = repartition(store, definition, COUNT, operator.pyncette.now())

    assert first.locked == [BUSY], "the running instance stays where it runs"
    assert stored_layout(store, "spread") == PartitionLayout(
        COUNT, selector=RANGE_SELECTOR, moving_from_modulo=(COUNT,)
    )
    for name in NAMES:
        expected = placed[BUSY] if name == BUSY else default_partition_selector(COUNT, name)
        assert where(store, "spread", name, COUNT) == [expected], name
    # a process started during the move finds the running one and cannot write a second copy
    during = start(store, processes)
    state = during.pyncette.get_task_state(during.task, BUSY)
    assert state is not None
    assert state.partition == placed[BUSY]
    with pytest.raises(TaskLockedError):
        during.pyncette.schedule_task(during.task, BUSY, interval=timedelta(minutes=5))
    assert where(store, "spread", BUSY, COUNT) == [placed[BUSY]]

    store.unlock(busy_key, claimed.lease or "")  # it finished
    second = repartition(store, definition, COUNT, operator.pyncette.now())

    assert second.complete
    assert second.moved == 1
    assert stored_layout(store, "spread") == PartitionLayout(COUNT, selector=RANGE_SELECTOR)
    layout_record = store.get(partition_count_key("spread"))
    assert layout_record is not None
    assert layout_record.args == {"partition_count": COUNT, "selector": "sha1-range"}
    # nothing orphaned, nothing twice: a beat polling the 4 partitions claims each instance once
    later = now + timedelta(days=1)
    claimed_names = [
        record.key.instance
        for partition in range(COUNT)
        for record in store.claim_due("spread", partition, later, 100, timedelta(minutes=5), "b")
    ]
    assert sorted(claimed_names) == sorted(NAMES)
    for name in NAMES:
        assert where(store, "spread", name, COUNT) == [default_partition_selector(COUNT, name)]
    # and the default selector's processes work again
    after = start(store, processes)
    after.pyncette.schedule_task(after.task, "someone", interval=timedelta(minutes=5))
    assert where(store, "spread", "someone", COUNT) == [
        default_partition_selector(COUNT, "someone")
    ]
    found = after.pyncette.get_task_state(after.task, BUSY)
    assert found is not None
    assert found.partition == default_partition_selector(COUNT, BUSY)
