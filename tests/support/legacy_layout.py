"""A store as celery-pyncette 0.1.0 left it: a partitioned task's layout record without a
``selector`` and its instances placed by the SHA-1 modulo selector, written directly."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from celery_pyncette._partitions import modulo_partition_selector
from celery_pyncette._records import partition_count_record
from celery_pyncette.schedules import IntervalSchedule
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store

#: The interval of every instance written here.
EVERY = timedelta(minutes=5)


def write_legacy_store(
    store: Store, task: str, count: int, names: Iterable[str], next_run: datetime, now: datetime
) -> dict[str, int]:
    """Write the 0.1.0 layout record of ``task`` (``count`` partitions) and one interval instance
    per name, due at ``next_run``, where the modulo selector put it. Returns name -> partition."""
    store.upsert(partition_count_record(task, {"partition_count": count}, now), now, force=True)
    placed: dict[str, int] = {}
    for name in names:
        partition = modulo_partition_selector(count, name) if count > 1 else 0
        spec = IntervalSchedule(EVERY).to_spec()
        key = InstanceKey(task, partition, name)
        store.upsert(InstanceRecord(key, next_run, spec, {"user": name}), now)
        placed[name] = partition
    return placed


def where(store: Store, task: str, name: str, partitions: int) -> list[int]:
    """Every partition below ``partitions`` holding a copy of ``name``."""
    return [p for p in range(partitions) if store.get(InstanceKey(task, p, name)) is not None]
