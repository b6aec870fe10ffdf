"""The library's own records: the beat registry, the stored partition counts, concurrency slots.

They are ordinary instance records, so every store keeps them through the contract's operations,
under task names users cannot declare (they start with :data:`RESERVED_TASK_PREFIX`; see
:mod:`celery_pyncette._names`). A record is one of the library's own by its task name alone; the
``spec`` field holds a ``{"kind": ...}`` tag that no code reads (stores written by earlier
versions have it, so it is kept as it is). This module is the one place that knows their layout:

==================  ====================================  ===========================  ==========
record              key (task, partition 0, instance)     next run                     tag
==================  ====================================  ===========================  ==========
beat                :data:`BEATS_TASK`, the beat's owner  written + :data:`NEVER_DUE`  ``beat``
partition count     :data:`TASKS_TASK`, the task's name   written + :data:`NEVER_DUE`  ``task``
concurrency slot    :data:`SLOTS_TASK_PREFIX` + pool id,  :data:`ALWAYS_DUE`           ``slot``
                    ``"00000"``, ``"00001"``, ...
==================  ====================================  ===========================  ==========

Beat and partition-count records are never claimed (their next run is a century away and no beat
polls their task); slots are always due, so a free one is claimed at once. What their ``args``
hold is the business of :mod:`~celery_pyncette._registry`, :mod:`~celery_pyncette._partitions`
and :mod:`~celery_pyncette._concurrency`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette.stores.base import InstanceKey, InstanceRecord

#: Task names starting with this are the library's own records.
RESERVED_TASK_PREFIX = "__pyncette"
#: The task of the beat registry: one record per beat, its instance the beat's owner id.
BEATS_TASK = "__pyncette_beats__"
#: The task of the stored partition counts: one record per dynamic task, named by the task.
TASKS_TASK = "__pyncette_tasks__"
#: The prefix of each slot pool's task (the pool's id follows it).
SLOTS_TASK_PREFIX = "__pyncette_slots__:"

#: The ``spec`` tags, as stored.
BEAT_TAG = "beat"
PARTITION_COUNT_TAG = "task"
SLOT_TAG = "slot"

#: How far ahead of its writing a never-claimed record's next run is set.
NEVER_DUE = timedelta(days=365 * 100)
#: The next run of every slot: long past, so a free slot is always due.
ALWAYS_DUE = datetime(2000, 1, 1, tzinfo=timezone.utc)


# --- predicates -------------------------------------------------------------------------------


def is_library_task(name: str) -> bool:
    """True for the task names of the library's own records (reserved to it)."""
    return name.startswith(RESERVED_TASK_PREFIX)


def is_library_record(record: InstanceRecord) -> bool:
    """True for any of the library's own records."""
    return is_library_task(record.key.task)


def is_beat_record(record: InstanceRecord) -> bool:
    """True for a beat registry record."""
    return record.key.task == BEATS_TASK


def is_partition_count_record(record: InstanceRecord) -> bool:
    """True for the stored partition count of a dynamic task."""
    return record.key.task == TASKS_TASK


def is_slot_record(record: InstanceRecord) -> bool:
    """True for a concurrency slot."""
    return record.key.task.startswith(SLOTS_TASK_PREFIX)


# --- builders ---------------------------------------------------------------------------------


def beat_key(owner: str) -> InstanceKey:
    """The key of the beat ``owner``'s registry record."""
    return InstanceKey(BEATS_TASK, 0, owner)


def beat_record(owner: str, args: Mapping[str, Any], now: datetime) -> InstanceRecord:
    """The registry record of the beat ``owner``, reporting ``args``, written at ``now``."""
    return InstanceRecord(beat_key(owner), now + NEVER_DUE, {"kind": BEAT_TAG}, args)


def partition_count_key(task: str) -> InstanceKey:
    """The key of the stored partition count of ``task``."""
    return InstanceKey(TASKS_TASK, 0, task)


def partition_count_record(task: str, args: Mapping[str, Any], now: datetime) -> InstanceRecord:
    """The stored partition count of ``task``, holding ``args``, written at ``now``."""
    return InstanceRecord(
        partition_count_key(task), now + NEVER_DUE, {"kind": PARTITION_COUNT_TAG}, args
    )


def slot_pool(pool_id: str) -> str:
    """The task name of the slot pool ``pool_id``."""
    return SLOTS_TASK_PREFIX + pool_id


def slot_records(pool: str, limit: int) -> list[InstanceRecord]:
    """The ``limit`` slots of the pool ``pool`` (a task name from :func:`slot_pool`), free."""
    return [
        InstanceRecord(InstanceKey(pool, 0, f"{i:05d}"), ALWAYS_DUE, {"kind": SLOT_TAG}, {})
        for i in range(limit)
    ]
