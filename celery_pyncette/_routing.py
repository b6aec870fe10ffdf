"""Routing dynamic instances to partitions by the *stored* partition layout, in every process.

A process caches each partitioned task's stored layout (:class:`~celery_pyncette._partitions.
PartitionLayout`). A process started before ``celery pyncette repartition`` would otherwise keep
writing into partitions of the old count, which the new count's beats never poll. So:

* instance keys are computed with the stored count, and the selector the stored layout records
  (:func:`~celery_pyncette._partitions.placing_selector`), not the declared ones;
* after each write (``schedule_task``: once per call; ``schedule_tasks``: once per call, not per
  instance) the stored layout is read again; when it changed, the cache is refreshed and every
  instance just written under the old count is moved to its partition under the new one (a
  repartition stores the new layout before it moves anything, so a write it did not see is always
  followed by a re-read that sees it);
* a read or delete that misses looks again under the new layout, and while a move is not complete
  under the previous placements too; a write during an unfinished move removes the copy a
  previous placement left behind (a running one wins without ``force``: ``TaskLockedError``);
* beats poll every partition that may hold instances (``layout.spanned``), re-read every
  :data:`REFRESH_EVERY`.

Tasks without a partition selector (plain dynamic tasks) always use partition 0: no re-reads.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime

from celery_pyncette._definitions import TaskDefinition
from celery_pyncette._partitions import (
    PartitionLayout,
    Placement,
    check_partition_count,
    placing_selector,
    stored_layout,
)
from celery_pyncette.errors import TaskLockedError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store

#: How often a beat re-reads the layouts of the tasks it polls (seconds, monotonic).
REFRESH_EVERY = 5.0


def routed(definition: TaskDefinition) -> bool:
    """True when the task's instances are spread by a selector (the layout matters)."""
    return definition.partition_selector is not None


class PartitionRouter:
    """One process's view of the stored partition layouts, and the keys they give."""

    def __init__(
        self,
        store: Callable[[], Store],
        now: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._now = now
        self._monotonic = monotonic
        self._layouts: dict[str, PartitionLayout] = {}
        self._polled_at: float | None = None
        self._lock = threading.Lock()

    # --- the layout -------------------------------------------------------------------------

    def layout(self, definition: TaskDefinition) -> PartitionLayout:
        """The cached layout; on first use per task, the partition-count check (which refuses a
        declared count that differs from a stored one with instances) and a read."""
        with self._lock:
            cached = self._layouts.get(definition.name)
        if cached is not None:
            return cached
        check_partition_count(self._store(), definition, self._now())
        return self.reread(definition)

    def stored(self, definition: TaskDefinition) -> PartitionLayout:
        """The stored layout (the declared count when none is stored), read now, not cached."""
        found = stored_layout(self._store(), definition.name)
        return found or PartitionLayout(definition.partition_count)

    def reread(self, definition: TaskDefinition) -> PartitionLayout:
        """Read the stored layout again and cache it."""
        fresh = self.stored(definition)
        with self._lock:
            self._layouts[definition.name] = fresh
        return fresh

    # --- keys -------------------------------------------------------------------------------

    @staticmethod
    def key_under(definition: TaskDefinition, placement: Placement, instance: str) -> InstanceKey:
        """The key of ``instance`` under ``placement`` (a partition count and the stored selector
        tag that placed it)."""
        count, tag = placement
        partition = 0
        selector = placing_selector(definition, tag)
        if count > 1 and selector is not None:
            partition = selector(count, instance)
            if not 0 <= partition < count:
                raise ValueError(f"partition_selector returned {partition} for {instance!r}")
        return InstanceKey(definition.name, partition, instance)

    def key(self, definition: TaskDefinition, instance: str) -> InstanceKey:
        """Where ``instance`` belongs now (by the cached stored layout)."""
        placement = self.layout(definition).placements[0] if routed(definition) else (1, None)
        return self.key_under(definition, placement, instance)

    # --- after writes, reads and deletes ----------------------------------------------------

    def settle(
        self,
        definition: TaskDefinition,
        written: Sequence[InstanceRecord],
        force: bool,
        refused: Collection[str] = (),
        keep_next_run: bool = False,
    ) -> list[str]:
        """After writing ``written`` (but the ``refused`` instance names): re-read the layout and
        move what it no longer routes here.

        Returns the instances that could not be moved because a running copy holds their new key
        (``force`` false); their stale copy is removed, so they count as refused, not written.
        With ``keep_next_run`` (the write kept unchanged timers), a move carries the next run
        stored at the old key, and a copy already at the new key with the same spec keeps its own.
        """
        if refused:
            skip = set(refused)
            written = [record for record in written if record.key.instance not in skip]
        if not routed(definition) or not written:
            return []
        # Compared record by record (not "did the cache change"): another thread of this process
        # may have refreshed the cache after this write's key was computed.
        layout = self.reread(definition)
        current = layout.placements[0]
        moves = [
            (record, self.key_under(definition, current, record.key.instance)) for record in written
        ]
        moves = [(record, target) for record, target in moves if target != record.key]
        store, now = self._store(), self._now()
        locked: set[str] = set()
        if moves:
            moved = [
                record.with_changes(
                    key=target,
                    next_run=self._stored_next_run(record) if keep_next_run else record.next_run,
                )
                for record, target in moves
            ]
            locked = {
                key.instance
                for key in store.upsert_many(moved, now, force, keep_next_run=keep_next_run)
            }
            for record, _ in moves:
                store.delete(record.key)
        if layout.moving:  # an unfinished move: a copy may still be at its old key
            placed = [
                self.key_under(definition, current, record.key.instance)
                for record in written
                if record.key.instance not in locked
            ]
            locked |= self._drop_left_behind(definition, layout, placed, force)
        return sorted(locked)

    def _stored_next_run(self, record: InstanceRecord) -> datetime:
        """The next run stored at ``record``'s key (the write may have kept an older one than the
        record's), or the record's when it is gone."""
        stored = self._store().get(record.key)
        return record.next_run if stored is None else stored.next_run

    def _drop_left_behind(
        self,
        definition: TaskDefinition,
        layout: PartitionLayout,
        placed: list[InstanceKey],
        force: bool,
    ) -> set[str]:
        """Remove the old copies of instances just written under the new count. An old copy that
        is running (without ``force``) wins: the new write is undone and reported as locked."""
        store, now = self._store(), self._now()
        locked: set[str] = set()
        for key in placed:
            for placement in layout.moving:
                old_key = self.key_under(definition, placement, key.instance)
                old = None if old_key == key else store.get(old_key)
                if old is None:
                    continue
                if old.is_locked(now) and not force:
                    store.delete(key)
                    locked.add(key.instance)
                    break
                store.delete(old_key)
        return locked

    def settle_one(
        self,
        definition: TaskDefinition,
        record: InstanceRecord,
        force: bool,
        keep_next_run: bool = False,
    ) -> InstanceRecord:
        """:meth:`settle` for one instance; raises ``TaskLockedError`` when it was refused.

        Returns the instance where it now is: ``record`` itself, or, when it was moved, the record
        stored at its new key (whose next run a copy already there may have kept).
        """
        if self.settle(definition, [record], force, keep_next_run=keep_next_run):
            raise TaskLockedError(f"instance {record.key.instance!r} is running (locked)")
        if not routed(definition):
            return record
        target = self.key(definition, record.key.instance)
        placed = None if target == record.key else self._store().get(target)
        return record if placed is None else placed

    def get(self, definition: TaskDefinition, key: InstanceKey) -> InstanceRecord | None:
        """The instance at ``key``, or where a repartition moved it (or has yet to move it)."""
        store = self._store()
        record = store.get(key)
        for other in self.other_keys(definition, key) if record is None else ():
            record = store.get(other)
            if record is not None:
                break
        return record

    def delete(self, definition: TaskDefinition, key: InstanceKey) -> bool:
        """Remove the instance at ``key`` and any copy a repartition moved; whether one existed."""
        store = self._store()
        removed = store.delete(key)
        for other in self.other_keys(definition, key):
            removed = store.delete(other) or removed
        return removed

    def spanned(self, definition: TaskDefinition) -> int:
        """How many partitions a listing of the task must walk (read now)."""
        if not definition.dynamic or not routed(definition):
            return definition.partition_count
        return max(definition.partition_count, self.stored(definition).spanned)

    def other_keys(self, definition: TaskDefinition, key: InstanceKey) -> list[InstanceKey]:
        """After ``key`` missed: the keys the instance may have under a changed layout (the new
        layout's, and the previous placements' while a move is not complete)."""
        if not routed(definition):
            return []
        layout = self.reread(definition)
        candidates = [
            self.key_under(definition, placement, key.instance) for placement in layout.placements
        ]
        unique: list[InstanceKey] = []
        for candidate in candidates:
            if candidate != key and candidate not in unique:
                unique.append(candidate)
        return unique

    # --- beats ------------------------------------------------------------------------------

    def polled(self, definitions: Iterable[TaskDefinition]) -> list[TaskDefinition]:
        """``definitions`` with each routed task polling ``range(layout.spanned)`` (unless its
        partitions were narrowed with ``enabled_partitions``); layouts re-read every
        :data:`REFRESH_EVERY` seconds."""
        definitions = list(definitions)
        now = self._monotonic()
        refresh = self._polled_at is None or now - self._polled_at >= REFRESH_EVERY
        result: list[TaskDefinition] = []
        for definition in definitions:
            if not definition.dynamic or not routed(definition):
                result.append(definition)
                continue
            layout = self.reread(definition) if refresh else self.layout(definition)
            spanned = layout.spanned
            if definition.enabled_partitions is None and spanned != definition.partition_count:
                definition = dataclasses.replace(definition, partition_count=spanned)
            result.append(definition)
        if refresh:
            self._polled_at = now
        return result
