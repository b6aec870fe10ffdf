"""Which selector placed a task's instances: the ``selector`` of the stored layout.

A layout without it was written by 0.1.0, whose default selector took SHA-1 modulo the count:
the default selector refuses it while instances remain (``repartition`` moves them); a task's own
``partition_selector`` is not concerned.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import ConfigurationError, Context, Pyncette
from celery_pyncette._extension import default_partition_selector
from celery_pyncette._partitions import (
    RANGE_SELECTOR,
    PartitionLayout,
    modulo_partition_selector,
    repartition,
    stored_layout,
)
from celery_pyncette._records import partition_count_key, partition_count_record
from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.memory import MemoryStore
from tests.conftest import FakeClock
from tests.support.legacy_layout import where, write_legacy_store

NAMES = [f"user-{i}" for i in range(40)]


def own_selector(count: int, name: str) -> int:
    return len(name) % count


def declare(store: MemoryStore, count: int, **options: Any) -> tuple[Pyncette, object]:
    app = Celery("selector", broker="memory://", set_as_current=False)
    pyncette = Pyncette(app, url="memory://")
    pyncette.runtime.use_store(store)

    @pyncette.partitioned_task(partition_count=count, name="spread", **options)
    def spread(context: Context) -> None: ...

    return pyncette, spread


def test_a_new_layout_records_the_range_selector(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    pyncette, spread = declare(store, 8)

    pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))

    record = store.get(partition_count_key("spread"))
    assert record is not None
    assert record.args == {"partition_count": 8, "selector": "sha1-range"}
    assert where(store, "spread", "bill", 8) == [default_partition_selector(8, "bill")]


def test_an_unrecorded_layout_is_refused_even_without_instances(fake_clock: FakeClock) -> None:
    # A 0.1.0 process still running would write by modulo without noticing a recorded selector.
    store = MemoryStore()
    write_legacy_store(store, "spread", 4, [], fake_clock.now, fake_clock.now)
    pyncette, spread = declare(store, 4)
    with pytest.raises(ConfigurationError, match=r"repartition spread --to 4"):
        pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))

    moved = repartition(store, pyncette.definition("spread"), 4, fake_clock.now)
    pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))

    assert (moved.moved, moved.kept, moved.complete) == (0, 0, True)
    assert stored_layout(store, "spread") == PartitionLayout(4, selector=RANGE_SELECTOR)


def test_one_partition_needs_no_move_whatever_placed_it(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    write_legacy_store(store, "spread", 1, NAMES, fake_clock.now, fake_clock.now)
    pyncette, spread = declare(store, 1)

    pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))

    assert pyncette.get_task_state(spread, NAMES[0]) is not None


def test_a_task_with_its_own_selector_is_not_concerned(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    store.upsert(
        partition_count_record("spread", {"partition_count": 4}, fake_clock.now), fake_clock.now
    )
    pyncette, spread = declare(store, 4, partition_selector=own_selector)
    pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))
    pyncette.check_partitions(pyncette.definition("spread"))  # instances now: still not refused

    moved = repartition(store, pyncette.definition("spread"), 2, fake_clock.now)

    assert moved.complete
    record = store.get(partition_count_key("spread"))
    assert record is not None
    assert record.args == {"partition_count": 2}, "no selector recorded for the task's own"
    assert where(store, "spread", "bill", 4) == [own_selector(2, "bill")]


def test_the_refusal_names_the_command_and_writes_nothing(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    write_legacy_store(store, "spread", 4, NAMES, fake_clock.now, fake_clock.now)
    pyncette, spread = declare(store, 4)

    with pytest.raises(ConfigurationError) as refused:
        pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))

    assert "`celery -A <app> pyncette repartition spread --to 4`" in str(refused.value)
    assert "Stop every process of the older version" in str(refused.value)
    assert stored_layout(store, "spread") == PartitionLayout(4)
    assert where(store, "spread", "bill", 4) == []


def test_a_changed_count_and_the_selector_move_in_one_repartition(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    placed = write_legacy_store(store, "spread", 4, NAMES, fake_clock.now, fake_clock.now)
    pyncette, _ = declare(store, 8)
    with pytest.raises(
        ConfigurationError, match=r"4 partitions placed by SHA-1 modulo the count, declared with 8"
    ):
        pyncette.check_partitions(pyncette.definition("spread"))
    busy = NAMES[0]
    store.claim_due("spread", placed[busy], fake_clock.now, 100, timedelta(minutes=1), "beat")
    running = {n for n in NAMES if placed[n] == placed[busy]}
    to_move = {n for n in running if default_partition_selector(8, n) != placed[n]}
    assert to_move

    first = repartition(store, pyncette.definition("spread"), 8, fake_clock.now)

    assert sorted(first.locked) == sorted(to_move), "running ones stay; those in place are kept"
    assert stored_layout(store, "spread") == PartitionLayout(
        8, selector=RANGE_SELECTOR, moving_from_modulo=(4,)
    )
    record = store.get(partition_count_key("spread"))
    assert record is not None
    assert record.args == {
        "partition_count": 8,
        "selector": "sha1-range",
        "moving_from_modulo": [4],
    }
    (polled,) = [d for d in pyncette.router.polled(pyncette.definitions()) if d.name == "spread"]
    assert polled.polled_partitions == tuple(range(8))
    fake_clock.advance(minutes=2)  # the leases expire
    assert repartition(store, pyncette.definition("spread"), 8, fake_clock.now).complete
    for name in NAMES:
        assert where(store, "spread", name, 8) == [default_partition_selector(8, name)], name
    assert stored_layout(store, "spread") == PartitionLayout(8, selector=RANGE_SELECTOR)


def test_during_an_interrupted_selector_move_instances_are_found_and_kept_once(
    fake_clock: FakeClock,
) -> None:
    # A repartition killed after storing the new layout, before moving anything.
    store = MemoryStore()
    placed = write_legacy_store(store, "spread", 4, NAMES, fake_clock.now, fake_clock.now)
    store.upsert(
        partition_count_record(
            "spread",
            {"partition_count": 4, "selector": "sha1-range", "moving_from_modulo": [4]},
            fake_clock.now,
        ),
        fake_clock.now,
        force=True,
    )
    pyncette, spread = declare(store, 4)
    moved = [n for n in NAMES if placed[n] != default_partition_selector(4, n)]
    replaced, removed = moved[0], moved[1]

    state = pyncette.get_task_state(spread, replaced)
    pyncette.schedule_task(spread, replaced, interval=timedelta(minutes=5), user="new")
    gone = pyncette.unschedule_task(spread, removed)

    assert state is not None
    assert state.partition == modulo_partition_selector(4, replaced)
    assert where(store, "spread", replaced, 4) == [default_partition_selector(4, replaced)]
    assert store.get(
        InstanceKey("spread", default_partition_selector(4, replaced), replaced)
    ).args == {  # type: ignore[union-attr]
        "user": "new"
    }
    assert gone is True
    assert where(store, "spread", removed, 4) == []
    assert repartition(store, pyncette.definition("spread"), 4, fake_clock.now).complete
    for name in NAMES:
        if name != removed:
            assert where(store, "spread", name, 4) == [default_partition_selector(4, name)], name


def test_a_selector_this_version_does_not_know_is_refused(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    args = {"partition_count": 4, "selector": "sha3-spiral"}
    store.upsert(partition_count_record("spread", args, fake_clock.now), fake_clock.now)
    pyncette, spread = declare(store, 4)

    with pytest.raises(ConfigurationError, match="'sha3-spiral', which this version does not"):
        pyncette.schedule_task(spread, "bill", interval=timedelta(minutes=5))
    assert where(store, "spread", "bill", 4) == []
