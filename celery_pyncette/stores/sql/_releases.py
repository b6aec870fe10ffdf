"""Writes that end a lease on the SQL store: commit and unlock, of one row or of a batch.

One row: prepared statements guarded by the lease (:func:`single_row_statements`, built once per
store; building and cache-keying a statement costs more than running it on a local server). A
batch: one transaction that locks the named rows, checks every lease, then writes the held rows
with one statement per task partition (and, for commits, per next run and status).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Table, bindparam, delete, select, update
from sqlalchemy.engine import Connection

from celery_pyncette.stores.base import Commit, InstanceKey, LeaseRef, Status
from celery_pyncette.stores.sql._dialects import CHUNK, Dialect, chunks
from celery_pyncette.stores.sql._rows import readable_columns


def commit_batch(
    conn: Connection, table: Table, commits: Sequence[Commit], now: datetime
) -> list[bool]:
    """Lock the rows, check every lease, then one statement per distinct (task, partition,
    next run, status); for each commit, whether its lease was held (and it was committed)."""
    c = table.c
    held = held_leases(conn, table, [LeaseRef(item.key, item.lease) for item in commits])
    groups: defaultdict[tuple[str, int, datetime | None, Status], list[str]]
    groups = defaultdict(list)
    for item, ok in zip(commits, held, strict=True):
        if ok:
            k = item.key
            groups[(k.task, k.partition, item.next_run, item.status)].append(k.instance)
    for (task, partition, next_run, status), names in groups.items():
        for chunk in chunks(names, CHUNK):
            where = (c.task == task, c.partition == partition, c.instance.in_(chunk))
            if next_run is None:
                conn.execute(delete(table).where(*where))
            else:
                values = _committed(next_run, now, status)
                conn.execute(update(table).where(*where).values(**values))
    return held


def unlock_batch(conn: Connection, table: Table, items: Sequence[LeaseRef]) -> list[bool]:
    """Lock the rows, check every lease, unlock those held; for each item, whether it was."""
    c = table.c
    held = held_leases(conn, table, items)
    groups: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
    for (key, _), ok in zip(items, held, strict=True):
        if ok:
            groups[(key.task, key.partition)].append(key.instance)
    for (task, partition), names in groups.items():
        for chunk in chunks(names, CHUNK):
            conn.execute(
                update(table)
                .where(c.task == task, c.partition == partition, c.instance.in_(chunk))
                .values(**_unlocked(table))
            )
    return held


def held_leases(conn: Connection, table: Table, items: Sequence[LeaseRef]) -> list[bool]:
    """Lock the named rows; for each (key, lease), whether ``lease`` is its current lease.

    A key named twice is held at most once (its first matching item).
    """
    c = table.c
    names: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
    for key, _ in items:
        names[(key.task, key.partition)].add(key.instance)
    current: dict[InstanceKey, str | None] = {}
    for (task, partition), group in names.items():
        for chunk in chunks(sorted(group), CHUNK):
            rows = conn.execute(
                select(c.instance, c.lease)
                .where(c.task == task, c.partition == partition, c.instance.in_(chunk))
                .with_for_update()
            )
            for instance, lease in rows:
                current[InstanceKey(task, partition, instance)] = lease
    held: list[bool] = []
    taken: set[InstanceKey] = set()
    for key, lease in items:
        ok = key not in taken and current.get(key) == lease
        if ok:
            taken.add(key)
        held.append(ok)
    return held


def _committed(next_run: datetime, now: datetime, status: Status) -> dict[str, Any]:
    return {
        "next_run": next_run,
        "ready_at": next_run,
        "locked_until": None,
        "lease": None,
        "locked_by": None,
        "last_run_at": now,
        "last_status": status,
    }


def _unlocked(table: Any) -> dict[str, Any]:
    return {"locked_until": None, "lease": None, "locked_by": None, "ready_at": table.c.next_run}


@dataclass(frozen=True)
class SingleRow:
    """Statements on one instance, with parameters ``k_task``, ``k_partition``, ``k_instance``
    (and ``k_lease`` for those that need the current lease)."""

    get: Executable
    lease: Executable
    commit: Executable  # + next_run, now, status
    commit_delete: Executable
    unlock: Executable


def single_row_statements(table: Table, dialect: Dialect) -> SingleRow:
    c = table.c
    key = (
        c.task == bindparam("k_task", type_=c.task.type),
        c.partition == bindparam("k_partition", type_=c.partition.type),
        c.instance == bindparam("k_instance", type_=c.instance.type),
    )
    leased = (*key, c.lease == bindparam("k_lease", type_=c.lease.type))
    next_run = bindparam("next_run", type_=c.next_run.type)
    released = {"locked_until": None, "lease": None, "locked_by": None}
    return SingleRow(
        get=select(*readable_columns(table, dialect.name)).where(*key),
        lease=select(c.lease).where(*key),
        commit=update(table)
        .where(*leased)
        .values(
            next_run=next_run,
            ready_at=next_run,
            last_run_at=bindparam("now", type_=c.last_run_at.type),
            last_status=bindparam("status", type_=c.last_status.type),
            **released,
        ),
        commit_delete=delete(table).where(*leased),
        unlock=update(table).where(*leased).values(ready_at=c.next_run, **released),
    )


def key_params(key: InstanceKey) -> dict[str, Any]:
    return {"k_task": key.task, "k_partition": key.partition, "k_instance": key.instance}


def leased_params(key: InstanceKey, lease: str) -> dict[str, Any]:
    return {**key_params(key), "k_lease": lease}
