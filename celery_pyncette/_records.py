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
backfill ledger     :data:`BACKFILLS_TASK`, a digest of    written + :data:`NEVER_DUE`  ``backfill``
                    (task, instance)
==================  ====================================  ===========================  ==========

Extra occurrences (``run_now`` and ``backfill``) are the one kind kept *inside* a user task's
partitions, beside the instance they run for, so beat claims, leases and settles them on the
normal path: key (the task, the instance's partition, :data:`EXTRA_PREFIX` + a digest of the
instance + the occurrence's time), next run the occurrence's time, spec a once-off at that time
whose ``extra`` field names the instance (``None``: the static task) and why it was written, args
a copy of the instance's. Their once-off schedule has no next run, so settling one deletes it and
never touches the instance's own record. Instance names starting with
:data:`RESERVED_INSTANCE_PREFIX` are refused to users (:mod:`celery_pyncette._names`), and every
listing of instances leaves them out (:func:`is_extra_instance`).

Beat and partition-count records are never claimed (their next run is a century away and no beat
polls their task); slots are always due, so a free one is claimed at once. What their ``args``
hold is the business of :mod:`~celery_pyncette._registry`, :mod:`~celery_pyncette._partitions`
and :mod:`~celery_pyncette._concurrency`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord

#: Task names starting with this are the library's own records.
RESERVED_TASK_PREFIX = "__pyncette"
#: The task of the beat registry: one record per beat, its instance the beat's owner id.
BEATS_TASK = "__pyncette_beats__"
#: The task of the stored partition counts: one record per dynamic task, named by the task.
TASKS_TASK = "__pyncette_tasks__"
#: The prefix of each slot pool's task (the pool's id follows it).
SLOTS_TASK_PREFIX = "__pyncette_slots__:"

#: The task of the backfill ledgers: one record per backfilled (task, instance).
BACKFILLS_TASK = "__pyncette_backfills__"
#: Instance names starting with this are the library's own, inside a user task's partitions.
RESERVED_INSTANCE_PREFIX = "__pyncette"
#: The prefix of every extra occurrence's instance name.
EXTRA_PREFIX = "__pyncette_extra__:"

#: The ``spec`` tags, as stored.
BEAT_TAG = "beat"
PARTITION_COUNT_TAG = "task"
SLOT_TAG = "slot"
BACKFILL_TAG = "backfill"
#: Why an extra occurrence was written (its spec's ``extra.why``).
RUN_NOW = "run_now"
BACKFILL = "backfill"

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


def is_extra_instance(name: str) -> bool:
    """True for the instance name of an extra occurrence (run now, backfill)."""
    return name.startswith(EXTRA_PREFIX)


def is_reserved_instance(name: str) -> bool:
    """True for the instance names reserved to the library inside user tasks."""
    return name.startswith(RESERVED_INSTANCE_PREFIX)


def extra_target(record: InstanceRecord) -> str | None:
    """The instance an extra occurrence runs for (``None``: the static task)."""
    extra = record.spec.get("extra")
    target = extra.get("instance") if isinstance(extra, Mapping) else None
    return target if isinstance(target, str) else None


def extra_why(record: InstanceRecord) -> str | None:
    """Why an extra occurrence was written: :data:`RUN_NOW` or :data:`BACKFILL`."""
    extra = record.spec.get("extra")
    why = extra.get("why") if isinstance(extra, Mapping) else None
    return why if isinstance(why, str) else None


def presented_instance(record: InstanceRecord) -> str | None:
    """The instance a record runs as: its own name, ``None`` for a static task, and for an extra
    occurrence (run now, backfill) the instance it runs for."""
    name = record.key.instance
    if is_extra_instance(name):
        return extra_target(record)
    return None if name == STATIC_INSTANCE else name


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


def _digest(*parts: str | None) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def extra_prefix(instance: str | None) -> str:
    """The name prefix shared by every extra occurrence of ``instance`` (``None``: static), so
    they are one contiguous range of the partition's names."""
    return f"{EXTRA_PREFIX}{_digest(instance)}:"


def extra_key(task: str, partition: int, instance: str | None, at: datetime) -> InstanceKey:
    """The key of the extra occurrence of ``instance`` at ``at`` (aware): the same occurrence
    always gets the same key, whatever wrote it. The time sorts as text (UTC, fixed width)."""
    stamp = at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return InstanceKey(task, partition, extra_prefix(instance) + stamp)


def extra_record(
    key: InstanceKey, instance: str | None, at: datetime, args: Mapping[str, Any], why: str
) -> InstanceRecord:
    """The extra occurrence ``key`` of ``instance``, due at ``at`` with ``args``."""
    spec = {
        "kind": "once",
        "at": at.astimezone(timezone.utc).isoformat(),
        "extra": {"instance": instance, "why": why},
    }
    return InstanceRecord(key, at, spec, dict(args))


def backfill_key(task: str, instance: str | None) -> InstanceKey:
    """The key of the backfill ledger of ``instance`` of ``task`` (``None``: static)."""
    return InstanceKey(BACKFILLS_TASK, 0, _digest(task, instance))


def backfill_record(
    task: str, instance: str | None, windows: list[list[str]], now: datetime
) -> InstanceRecord:
    """The ledger of the windows backfilled for ``instance`` of ``task``: ``[[start, end],
    ...]`` as ISO texts, written at ``now``."""
    args = {"task": task, "instance": instance, "windows": windows}
    return InstanceRecord(
        backfill_key(task, instance), now + NEVER_DUE, {"kind": BACKFILL_TAG}, args
    )
