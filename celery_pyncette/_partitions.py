"""Partition bookkeeping: the stored partition count of each dynamic task, and repartitioning.

Instances of a partitioned task live in ``partition_selector(partition_count, name)``. Changing
``partition_count`` in code would leave stored instances in partitions nobody polls (Pyncette
orphans them silently). So the count each dynamic task was stored with is kept in the store, in
one of the library's own records (:mod:`celery_pyncette._records`); a process that declares
another count refuses to schedule or poll that task until :func:`repartition` has moved the
instances.

The stored record is the truth for routing: :func:`repartition` writes the new count (with
``moving_from``, the old one) *before* it moves anything, and every process routes by the stored
count and re-reads it after each write (:mod:`celery_pyncette._routing`). So a process started
before a repartition either wrote where the move still finds it, or sees the new count after its
write and moves the instance itself: nothing lands in a partition no beat polls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery_pyncette._definitions import TaskDefinition
from celery_pyncette._records import partition_count_key, partition_count_record
from celery_pyncette.errors import ConfigurationError, TaskLockedError
from celery_pyncette.stores.base import InstanceKey, Store

logger = logging.getLogger("celery_pyncette.partitions")


@dataclass(frozen=True, slots=True)
class PartitionLayout:
    """Where a task's instances are: ``count`` partitions, and while a :func:`repartition` is not
    complete, some still where the previous counts ``moving_from`` put them."""

    count: int
    moving_from: tuple[int, ...] = ()

    @property
    def spanned(self) -> int:
        """How many partitions may hold instances (poll and list ``range(spanned)``)."""
        return max((self.count, *self.moving_from))


def stored_layout(store: Store, task: str) -> PartitionLayout | None:
    """The stored layout of ``task``'s instances, if recorded."""
    record = store.get(partition_count_key(task))
    if record is None:
        return None
    moving = record.args.get("moving_from") or ()
    return PartitionLayout(int(record.args["partition_count"]), tuple(int(n) for n in moving))


def stored_partition_count(store: Store, task: str) -> int | None:
    """The partition count ``task``'s instances are stored with, if recorded."""
    layout = stored_layout(store, task)
    return None if layout is None else layout.count


def _record_layout(store: Store, task: str, layout: PartitionLayout, now: datetime) -> None:
    args: dict[str, Any] = {"partition_count": layout.count}
    moving = sorted(set(layout.moving_from) - {layout.count})
    if moving:
        args["moving_from"] = moving
    store.upsert(partition_count_record(task, args, now), now, force=True)


def _holds_instances(store: Store, task: str, partitions: range) -> bool:
    return any(store.list_instances(task, p, 1) for p in partitions)


def check_partition_count(store: Store, definition: TaskDefinition, now: datetime) -> None:
    """Record the declared partition count, or refuse a changed one while instances remain.

    Raises :class:`ConfigurationError` naming the command that moves the instances.
    """
    declared = definition.partition_count
    layout = stored_layout(store, definition.name)
    if layout is not None and layout.count == declared:
        if layout.moving_from:
            logger.warning(
                "the repartition of %s is not complete: instances that were running stay in the "
                "partitions of %s partitions (still polled); run `celery -A <app> pyncette "
                "repartition %s --to %d` again",
                definition.name,
                " and ".join(map(str, layout.moving_from)),
                definition.name,
                declared,
            )
        return
    if layout is not None and _holds_instances(store, definition.name, range(layout.spanned)):
        raise ConfigurationError(
            f"task {definition.name!r} is declared with partition_count={declared} but its "
            f"instances are stored in {layout.count} partitions; deploy code declaring "
            f"partition_count={layout.count}, or move them first with "
            f"`celery -A <app> pyncette repartition {definition.name} --to {declared}`"
        )
    _record_layout(store, definition.name, PartitionLayout(declared), now)


@dataclass
class RepartitionResult:
    """What :func:`repartition` did."""

    moved: int = 0
    kept: int = 0
    locked: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every instance is in its new partition (none was running)."""
        return not self.locked


def repartition(
    store: Store, definition: TaskDefinition, to: int, now: datetime
) -> RepartitionResult:
    """Move every instance of ``definition`` to its partition under ``to`` partitions.

    The new count is stored first, with ``moving_from`` (the counts that may still place
    instances), so every process routes new writes by it while the move runs; then each instance
    is written under its new key before the old one is deleted, so a crash leaves at worst a
    duplicate, never a loss. A running (locked) instance is left where it is and reported (beats
    keep polling the old partitions meanwhile); run again once it finished. ``moving_from`` is
    cleared when everything was moved.
    """
    if isinstance(to, bool) or not isinstance(to, int) or to < 1:
        raise ValueError(f"the new partition count must be a positive integer, got {to!r}")
    selector = definition.partition_selector
    if selector is None and to > 1:
        raise ValueError(f"{definition.name!r} has no partition selector; declare it partitioned")
    layout = stored_layout(store, definition.name) or PartitionLayout(definition.partition_count)
    sources = {layout.count, *layout.moving_from}  # where instances may be now
    _record_layout(store, definition.name, PartitionLayout(to, tuple(sources)), now)
    spanned = max((*sources, definition.partition_count))
    result = RepartitionResult()
    arrived: set[str] = set()
    for partition in range(spanned):
        after: str | None = None
        while page := store.list_instances(definition.name, partition, 500, after):
            after = page[-1].key.instance
            for record in page:
                if record.key.instance in arrived:
                    continue  # moved here earlier in this run
                target = selector(to, record.key.instance) if selector and to > 1 else 0
                if target == partition:
                    result.kept += 1
                    continue
                if record.is_locked(now):
                    result.locked.append(record.key.instance)
                    continue
                moved = record.with_changes(
                    key=InstanceKey(definition.name, target, record.key.instance)
                )
                try:
                    store.upsert(moved, now)
                except TaskLockedError:
                    result.locked.append(record.key.instance)
                    continue
                store.delete(record.key)
                result.moved += 1
                if target > partition:
                    arrived.add(record.key.instance)
    if result.complete:
        _record_layout(store, definition.name, PartitionLayout(to), now)
    return result
