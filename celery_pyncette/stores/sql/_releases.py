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

from sqlalchemy import (
    ColumnElement,
    Executable,
    Table,
    Text,
    bindparam,
    case,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection

from celery_pyncette.stores._history import (
    Run,
    decoded_runs,
    history_lines,
    run_to_json,
    settled_next_run,
)
from celery_pyncette.stores.base import (
    STATIC_INSTANCE,
    Commit,
    InstanceKey,
    LeaseRef,
    RunLog,
    Status,
)
from celery_pyncette.stores.sql._dialects import CHUNK, Dialect, chunks
from celery_pyncette.stores.sql._history import cut_value, history_after
from celery_pyncette.stores.sql._rows import readable_columns


def commit_batch(
    conn: Connection, table: Table, commits: Sequence[Commit], now: datetime, dialect: str
) -> list[bool]:
    """Lock the rows, check every lease, then one statement per distinct (task, partition, next
    run, status, history size): each counts the run and adds its history entry in SQL (see
    :mod:`._history`). The count read under the lock decides which rows ``max_runs`` ends. For
    each commit, whether its lease was held (and it was committed)."""
    c = table.c
    current = _locked_rows(conn, table, [item.key for item in commits])
    held: list[bool] = []
    taken: set[InstanceKey] = set()
    groups: defaultdict[tuple[str, int, datetime | None, Status, int], dict[str, str | None]]
    groups = defaultdict(dict)
    for item in commits:
        k = item.key
        row = current.get(k)
        ok = k not in taken and row is not None and row[0] == item.lease
        held.append(ok)
        if not ok or row is None:
            continue
        taken.add(k)
        static = k.instance == STATIC_INSTANCE
        next_run = settled_next_run(static, item.next_run, (row[1] or 0) + 1, item.max_runs)
        entry = None if item.run is None or not item.history_size else run_to_json(item.run)
        size = item.history_size if entry is not None else 0
        groups[(k.task, k.partition, next_run, item.status, size)][k.instance] = entry
    for (task, partition, next_run, status, size), entries in groups.items():
        for chunk in chunks(list(entries), CHUNK):
            where = (c.task == task, c.partition == partition, c.instance.in_(chunk))
            if next_run is None:
                conn.execute(delete(table).where(*where))
                continue
            values: dict[str, Any] = {**_committed(next_run, now, status), "runs": _counted(c)}
            if size:
                written = case({name: entries[name] for name in chunk}, value=c.instance)
                cut = literal(cut_value(dialect, size))
                values["history"] = history_after(dialect, c.history, written, cut)
            conn.execute(update(table).where(*where).values(**values))
    return held


def _counted(c: Any) -> ColumnElement[Any]:
    return func.coalesce(c.runs, 0) + 1


def _locked_rows(
    conn: Connection, table: Table, keys: Sequence[InstanceKey]
) -> dict[InstanceKey, tuple[str | None, int | None]]:
    """Lock the named rows; for each found, its lease and count of settled runs."""
    c = table.c
    names: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
    for key in keys:
        names[(key.task, key.partition)].add(key.instance)
    found: dict[InstanceKey, tuple[str | None, int | None]] = {}
    for (task, partition), group in names.items():
        for chunk in chunks(sorted(group), CHUNK):
            rows = conn.execute(
                select(c.instance, c.lease, c.runs)
                .where(c.task == task, c.partition == partition, c.instance.in_(chunk))
                .with_for_update()
            )
            for instance, lease, runs in rows:
                found[InstanceKey(task, partition, instance)] = (lease, runs)
    return found


def read_run_log(conn: Connection, table: Table, key: InstanceKey, limit: int) -> RunLog:
    """The count of settled runs and the last ``limit`` history entries of one instance."""
    c = table.c
    row = conn.execute(
        select(c.runs, c.history).where(
            c.task == key.task, c.partition == key.partition, c.instance == key.instance
        )
    ).first()
    if row is None:
        return RunLog()
    return RunLog(row[0] or 0, decoded_runs(history_lines(row[1]), limit))


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
    commit_history: Executable  # + next_run, now, status, entry, cut
    commit_delete: Executable
    unlock: Executable
    unlock_history: Executable  # + entry, cut
    record: Executable  # + entry, cut: the history alone, whatever the lease

    @staticmethod
    def history_params(dialect: str, run: Run, history_size: int) -> dict[str, Any]:
        """The ``entry`` and ``cut`` parameters that add ``run`` to a history of that size."""
        return {"entry": run_to_json(run), "cut": cut_value(dialect, history_size)}

    def unlock_of(
        self, dialect: str, key: InstanceKey, lease: str, run: Run | None, history_size: int
    ) -> tuple[Executable, dict[str, Any]]:
        """The statement and parameters of an unlock of one row (with a history entry)."""
        params = leased_params(key, lease)
        if run is None or history_size <= 0:
            return self.unlock, params
        return self.unlock_history, {**params, **self.history_params(dialect, run, history_size)}

    def commit_of(
        self,
        dialect: str,
        key: InstanceKey,
        lease: str,
        next_run: datetime | None,
        now: datetime,
        status: Status,
        run: Run | None,
        history_size: int,
    ) -> tuple[Executable, dict[str, Any]]:
        """The statement and parameters of a commit of one row without ``max_runs``."""
        params = leased_params(key, lease)
        if next_run is None:
            return self.commit_delete, params
        params.update(next_run=next_run, now=now, status=status)
        if run is None or history_size <= 0:
            return self.commit, params
        params.update(self.history_params(dialect, run, history_size))
        return self.commit_history, params


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
    committed = {
        "next_run": next_run,
        "ready_at": next_run,
        "last_run_at": bindparam("now", type_=c.last_run_at.type),
        "last_status": bindparam("status", type_=c.last_status.type),
        "runs": _counted(c),
        **released,
    }
    entry = bindparam("entry", type_=Text())
    history = history_after(dialect.name, c.history, entry, bindparam("cut"))
    return SingleRow(
        get=select(*readable_columns(table, dialect.name)).where(*key),
        lease=select(c.lease).where(*key),
        commit=update(table).where(*leased).values(**committed),
        commit_history=update(table).where(*leased).values(**committed, history=history),
        commit_delete=delete(table).where(*leased),
        unlock=update(table).where(*leased).values(ready_at=c.next_run, **released),
        unlock_history=update(table)
        .where(*leased)
        .values(ready_at=c.next_run, history=history, **released),
        record=update(table).where(*key).values(history=history),
    )


def key_params(key: InstanceKey) -> dict[str, Any]:
    return {"k_task": key.task, "k_partition": key.partition, "k_instance": key.instance}


def leased_params(key: InstanceKey, lease: str) -> dict[str, Any]:
    return {**key_params(key), "k_lease": lease}
