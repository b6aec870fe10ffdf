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

The record also says which selector placed the instances, for tasks on the default selector:
``"selector": "sha1-range"`` (:data:`RANGE_SELECTOR`, this version's
:func:`~celery_pyncette._definitions.default_partition_selector`, Pyncette's). A record without
it was written by a version up to 0.1.0, whose default selector took the SHA-1 modulo the count
(:func:`modulo_partition_selector`). A process on the default selector meeting such a record
refuses, like a changed count, until :func:`repartition` moved the instances (same count, range
form), and even when the task has no instances. Automatic migration is not done: processes of
the older version, still running during a rolling upgrade, keep writing by the modulo form and
never read a selector, so only an operator who stopped them knows that the move is safe. A task
with its own ``partition_selector`` records no selector and is never refused for it: its
selector placed every layout (a plain dynamic task has no selector: partition 0).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery_pyncette._definitions import TaskDefinition, default_partition_selector
from celery_pyncette._records import (
    partition_count_key,
    partition_count_record,
    presented_instance,
)
from celery_pyncette.errors import ConfigurationError, TaskLockedError
from celery_pyncette.stores.base import InstanceKey, Store

logger = logging.getLogger("celery_pyncette.partitions")


#: The stored ``selector`` of a layout placed by :func:`default_partition_selector` (range form).
RANGE_SELECTOR = "sha1-range"

#: Where a layout's instances may be: a partition count and the stored selector tag that placed
#: them (``None``: not recorded, i.e. the modulo form of older versions, or the task's own
#: ``partition_selector``).
Placement = tuple[int, str | None]


def modulo_partition_selector(partition_count: int, instance: str) -> int:
    """The default selector of versions up to 0.1.0: the SHA-1 of the instance name (UTF-8) as a
    big-endian integer, modulo ``partition_count``. Kept to find the instances they placed."""
    digest = hashlib.sha1(instance.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % partition_count


def selector_tag(definition: TaskDefinition) -> str | None:
    """The ``selector`` a layout written for ``definition`` records: :data:`RANGE_SELECTOR` on the
    default selector, ``None`` (nothing recorded) for a task's own selector or none."""
    return RANGE_SELECTOR if definition.partition_selector is default_partition_selector else None


def placing_selector(
    definition: TaskDefinition, tag: str | None
) -> Callable[[int, str], int] | None:
    """The function that placed the instances of a layout recorded with ``tag``.

    A task's own selector (or none) placed every layout of it; on the default selector, an
    unrecorded tag means the modulo form of older versions.
    """
    if definition.partition_selector is not default_partition_selector:
        return definition.partition_selector
    return default_partition_selector if tag == RANGE_SELECTOR else modulo_partition_selector


@dataclass(frozen=True, slots=True)
class PartitionLayout:
    """Where a task's instances are: ``count`` partitions, placed by the selector ``selector``
    records; while a :func:`repartition` is not complete, some still where the previous counts
    ``moving_from`` put them (by the same selector), or ``moving_from_modulo`` (by the selector of
    an unrecorded layout: the modulo form of older versions)."""

    count: int
    moving_from: tuple[int, ...] = ()
    selector: str | None = None
    moving_from_modulo: tuple[int, ...] = ()

    @property
    def placements(self) -> tuple[Placement, ...]:
        """Every placement that may hold instances, the current one first, without repeats."""
        found: list[Placement] = [(self.count, self.selector)]
        for placement in (
            *((n, self.selector) for n in self.moving_from),
            *((n, None) for n in self.moving_from_modulo),
        ):
            if placement not in found:
                found.append(placement)
        return tuple(found)

    @property
    def moving(self) -> tuple[Placement, ...]:
        """The placements an unfinished :func:`repartition` is moving instances from."""
        return self.placements[1:]

    @property
    def spanned(self) -> int:
        """How many partitions may hold instances (poll and list ``range(spanned)``)."""
        return max(count for count, _ in self.placements)

    @classmethod
    def moving_to(
        cls, count: int, selector: str | None, sources: tuple[Placement, ...]
    ) -> PartitionLayout:
        """The layout of ``count`` partitions placed by ``selector`` while instances may still be
        at ``sources`` (a recorded selector's placements keep it; unrecorded ones become
        ``moving_from_modulo`` under a recorded selector)."""
        same = sorted({n for n, tag in sources if tag == selector or selector is None} - {count})
        modulo = sorted({n for n, tag in sources if tag is None and selector is not None})
        return cls(count, tuple(same), selector, tuple(modulo))


def stored_layout(store: Store, task: str) -> PartitionLayout | None:
    """The stored layout of ``task``'s instances, if recorded."""
    record = store.get(partition_count_key(task))
    if record is None:
        return None
    args = record.args
    selector = args.get("selector")
    return PartitionLayout(
        int(args["partition_count"]),
        tuple(int(n) for n in args.get("moving_from") or ()),
        None if selector is None else str(selector),
        tuple(int(n) for n in args.get("moving_from_modulo") or ()),
    )


def stored_partition_count(store: Store, task: str) -> int | None:
    """The partition count ``task``'s instances are stored with, if recorded."""
    layout = stored_layout(store, task)
    return None if layout is None else layout.count


def _record_layout(store: Store, task: str, layout: PartitionLayout, now: datetime) -> None:
    args: dict[str, Any] = {"partition_count": layout.count}
    if layout.selector is not None:
        args["selector"] = layout.selector
    moving = sorted(set(layout.moving_from) - {layout.count})
    if moving:
        args["moving_from"] = moving
    if layout.moving_from_modulo:
        args["moving_from_modulo"] = sorted(set(layout.moving_from_modulo))
    store.upsert(partition_count_record(task, args, now), now, force=True)


def _holds_instances(store: Store, task: str, partitions: range) -> bool:
    return any(store.list_instances(task, p, 1) for p in partitions)


def _placed_as_declared(layout: PartitionLayout, definition: TaskDefinition) -> bool:
    """True when the stored layout's selector is the declared one (or cannot differ from it)."""
    declared = selector_tag(definition)
    return declared is None or layout.selector == declared or layout.spanned == 1


def check_partition_count(store: Store, definition: TaskDefinition, now: datetime) -> None:
    """Record the declared partition layout, or refuse a changed one.

    Refused: another partition count while instances remain; and, on the default selector, a
    layout of more than one partition that 0.1.0 recorded (no ``selector``: placed by the modulo
    form), even without instances, since a 0.1.0 process still running would keep writing by the
    modulo form without noticing a recorded change (it does notice a changed count). Raises
    :class:`ConfigurationError` naming the command that moves the instances.
    """
    declared = definition.partition_count
    name = definition.name
    layout = stored_layout(store, name)
    if layout is None:
        _record_layout(
            store, name, PartitionLayout(declared, selector=selector_tag(definition)), now
        )
        return
    command = f"`celery -A <app> pyncette repartition {name} --to {declared}`"
    if layout.selector not in (None, RANGE_SELECTOR) and selector_tag(definition) is not None:
        raise ConfigurationError(
            f"task {name!r} has a partition layout placed by the selector {layout.selector!r}, "
            "which this version does not know (a newer version recorded it); run that version"
        )
    if not _placed_as_declared(layout, definition):
        counts = "" if layout.count == declared else f", declared with {declared} partitions"
        raise ConfigurationError(
            f"task {name!r} has a partition layout recorded by celery-pyncette 0.1.0 or earlier "
            f"({layout.count} partitions placed by SHA-1 modulo the count{counts}); this version "
            "places instances by Pyncette's selector (SHA-1 as a range). Stop every process of "
            f"the older version, then move the instances with {command}"
        )
    if layout.count == declared:
        if layout.moving:
            logger.warning(
                "the repartition of %s is not complete: instances that were running stay in the "
                "partitions of %s partitions (still polled); run `celery -A <app> pyncette "
                "repartition %s --to %d` again",
                name,
                " and ".join(sorted({str(count) for count, _ in layout.moving})),
                name,
                declared,
            )
        return
    if _holds_instances(store, name, range(layout.spanned)):
        raise ConfigurationError(
            f"task {name!r} is declared with partition_count={declared} but its "
            f"instances are stored in {layout.count} partitions; deploy code declaring "
            f"partition_count={layout.count}, or move them first with {command}"
        )
    _record_layout(store, name, PartitionLayout(declared, selector=selector_tag(definition)), now)


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
    """Move every instance of ``definition`` to its partition under ``to`` partitions, placed by
    its declared selector (the default one: also from the modulo form older versions placed by).

    The new layout is stored first, with ``moving_from`` / ``moving_from_modulo`` (the placements
    that may still hold instances), so every process routes new writes by it while the move runs;
    then each instance is written under its new key before the old one is deleted, so a crash
    leaves at worst a duplicate, never a loss. A running (locked) instance is left where it is
    and reported (beats keep polling the old partitions meanwhile); run again once it finished.
    ``moving_from`` and ``moving_from_modulo`` are cleared when everything was moved.
    """
    if isinstance(to, bool) or not isinstance(to, int) or to < 1:
        raise ValueError(f"the new partition count must be a positive integer, got {to!r}")
    selector = definition.partition_selector
    if selector is None and to > 1:
        raise ValueError(f"{definition.name!r} has no partition selector; declare it partitioned")
    # No record: the instances predate recorded layouts (placed as an unrecorded layout is).
    layout = stored_layout(store, definition.name) or PartitionLayout(definition.partition_count)
    placed_by = selector_tag(definition)
    moving = PartitionLayout.moving_to(to, placed_by, layout.placements)  # where they may be now
    _record_layout(store, definition.name, moving, now)
    spanned = max(layout.spanned, definition.partition_count)
    result = RepartitionResult()
    arrived: set[str] = set()
    for partition in range(spanned):
        after: str | None = None
        while page := store.list_instances(definition.name, partition, 500, after):
            after = page[-1].key.instance
            for record in page:
                if record.key.instance in arrived:
                    continue  # moved here earlier in this run
                # An extra occurrence (run now, backfill) goes where the instance it runs for goes.
                placed_as = presented_instance(record) or record.key.instance
                target = selector(to, placed_as) if selector and to > 1 else 0
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
        _record_layout(store, definition.name, PartitionLayout(to, selector=placed_by), now)
    return result
