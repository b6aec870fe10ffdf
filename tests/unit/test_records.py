"""The library's own records: what the registry, the partition counts and the slots store.

The stored form is pinned with literal values: stores written by earlier versions must read the
same, so a change here is a change of the stored format.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from celery_pyncette import _records
from celery_pyncette import _registry as registry
from celery_pyncette._concurrency import ConcurrencyLimit, Slots
from celery_pyncette._definitions import TaskDefinition, default_partition_selector
from celery_pyncette._partitions import check_partition_count, repartition
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.memory import MemoryStore

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CENTURY = timedelta(days=36500)


def test_a_beat_record_is_stored_as_before() -> None:
    store = MemoryStore()

    registry.record_beat(
        store, "beat-1", hostname="h", pid=7, started_at=NOW, partitions={"t": [0, 2]}, now=NOW
    )

    assert store.get(InstanceKey("__pyncette_beats__", 0, "beat-1")) == InstanceRecord(
        InstanceKey("__pyncette_beats__", 0, "beat-1"),
        NOW + CENTURY,
        {"kind": "beat"},
        {
            "hostname": "h",
            "pid": 7,
            "started_at": NOW.isoformat(),
            "last_tick": NOW.isoformat(),
            "partitions": {"t": [0, 2]},
        },
    )


def test_a_partition_count_record_is_stored_as_before() -> None:
    store = MemoryStore()
    definition = TaskDefinition(
        "spread", "spread", None, dynamic=True, partition_count=4, partition_selector=lambda n, _: 0
    )

    check_partition_count(store, definition, NOW)
    recorded = store.get(InstanceKey("__pyncette_tasks__", 0, "spread"))
    store.upsert(InstanceRecord(InstanceKey("spread", 1, "u25"), NOW), NOW)
    store.claim_due("spread", 1, NOW, 1, timedelta(minutes=1), "w")  # running: not moved
    repartition(store, definition, 2, NOW)
    moving = store.get(InstanceKey("__pyncette_tasks__", 0, "spread"))

    expected = InstanceRecord(
        InstanceKey("__pyncette_tasks__", 0, "spread"),
        NOW + CENTURY,
        {"kind": "task"},
        {"partition_count": 4},
    )
    assert recorded == expected
    assert moving == expected.with_changes(args={"partition_count": 2, "moving_from": [4]})


def test_a_default_selector_layout_records_which_selector_placed_it() -> None:
    # 0.1.0 wrote {"partition_count": 4} for a task on the (modulo) default selector too: the
    # absent selector is what tells its layouts apart.
    store = MemoryStore()
    definition = TaskDefinition(
        "spread",
        "spread",
        None,
        dynamic=True,
        partition_count=4,
        partition_selector=default_partition_selector,
    )
    key = InstanceKey("__pyncette_tasks__", 0, "spread")
    store.upsert(InstanceRecord(key, NOW, {"kind": "task"}, {"partition_count": 4}), NOW)
    placed = InstanceKey("spread", 1, "u25")  # modulo: partition 1, range: partition 2
    store.upsert(InstanceRecord(placed, NOW), NOW)
    store.claim_due("spread", 1, NOW, 1, timedelta(minutes=1), "w")  # running: not moved

    repartition(store, definition, 4, NOW)
    moving = store.get(key)
    store.unlock(placed, store.lease_of(placed) or "")
    repartition(store, definition, 4, NOW)
    moved = store.get(key)

    expected = InstanceRecord(key, NOW + CENTURY, {"kind": "task"}, {})
    assert moving == expected.with_changes(
        args={"partition_count": 4, "selector": "sha1-range", "moving_from_modulo": [4]}
    )
    assert moved == expected.with_changes(args={"partition_count": 4, "selector": "sha1-range"})
    assert store.get(InstanceKey("spread", 2, "u25")) is not None


def test_slot_records_are_stored_as_before() -> None:
    store = MemoryStore()
    pool = ConcurrencyLimit(2).pool("t", {})
    assert pool == "__pyncette_slots__:697ee3714b834806565fe350"

    Slots("beat-1").acquire(store, pool, 2, NOW, timedelta(minutes=1))

    assert store.get(InstanceKey(pool, 0, "00001")) == InstanceRecord(
        InstanceKey(pool, 0, "00001"),
        datetime(2000, 1, 1, tzinfo=timezone.utc),
        {"kind": "slot"},
        {},
    )
    assert store.get(InstanceKey(pool, 0, "00000")) is not None
    assert store.get(InstanceKey(pool, 0, "00002")) is None


def test_each_library_record_is_told_by_its_task_name() -> None:
    beat = _records.beat_record("b", {}, NOW)
    count = _records.partition_count_record("t", {}, NOW)
    (slot,) = _records.slot_records(_records.slot_pool("abc"), 1)
    user = InstanceRecord(InstanceKey("reports.daily", 0, "b"), NOW, {"kind": "beat"})

    assert [_records.is_beat_record(r) for r in (beat, count, slot, user)] == [1, 0, 0, 0]
    assert [_records.is_partition_count_record(r) for r in (beat, count, slot, user)] == [
        0,
        1,
        0,
        0,
    ]
    assert [_records.is_slot_record(r) for r in (beat, count, slot, user)] == [0, 0, 1, 0]
    assert [_records.is_library_record(r) for r in (beat, count, slot, user)] == [1, 1, 1, 0]


def test_an_extra_occurrence_and_a_backfill_ledger_are_stored_as_before() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 6789, tzinfo=timezone.utc)
    key = _records.extra_key("t", 3, "bill", at)

    assert key == InstanceKey(
        "t", 3, "__pyncette_extra__:095258bb35093a1b44dbb21ee2b77a3b:20300102T030405.006789Z"
    )
    assert _records.extra_key("t", 0, None, at).instance == (
        "__pyncette_extra__:1d8fc6ceb1f94c6326d6d5483d258fcb:20300102T030405.006789Z"
    )
    assert _records.extra_record(key, "bill", at, {"a": 1}, _records.RUN_NOW) == InstanceRecord(
        key,
        at,
        {
            "kind": "once",
            "at": "2030-01-02T03:04:05.006789+00:00",
            "extra": {"instance": "bill", "why": "run_now"},
        },
        {"a": 1},
    )
    windows = [["2030-01-01T00:00:00+00:00", "2030-01-02T00:00:00+00:00"]]
    assert _records.backfill_record("t", "bill", windows, NOW) == InstanceRecord(
        InstanceKey("__pyncette_backfills__", 0, "6dd68da3a8e515a236640eaf1156f978"),
        NOW + CENTURY,
        {"kind": "backfill"},
        {"task": "t", "instance": "bill", "windows": windows},
    )
    assert _records.backfill_key("t", None).instance == "61e38f1e714312d32fb6b40932419c1e"
