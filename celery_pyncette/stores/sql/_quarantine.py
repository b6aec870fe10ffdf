"""The quarantine marker of the SQL store.

A quarantined row keeps its data and carries ``quarantined_at`` and ``quarantine_reason``; its
lease is cleared (commits, unlocks and heartbeats of the lease that held it find it lost) and its
``ready_at`` is :data:`OUT_OF_INDEX`, so claims and polls, which read ``ready_at <= now``, no longer
meet it. An upsert writes the marker back to ``NULL`` and ``ready_at`` to the new next run (a
repair); a delete removes the row with its marker.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, Executable, Select, Table, bindparam, select, update

from celery_pyncette.stores.base import InstanceKey, Quarantined

#: The ``ready_at`` of a quarantined row: later than any ``now`` a claim or a poll is given.
OUT_OF_INDEX = datetime(9999, 1, 1, tzinfo=timezone.utc)
#: Longest reason kept (longer ones are cut).
REASON_CHARS = 1000


def cleared_values() -> dict[str, Any]:
    """The marker columns of a healthy row (an upsert writes them)."""
    return {"quarantined_at": None, "quarantine_reason": None}


def quarantine_statement(table: Table, leased: bool) -> Executable:
    """``UPDATE`` one row (``k_task``, ``k_partition``, ``k_instance``; with ``leased``, only
    while its lease is ``k_lease``) to the marker of ``q_reason`` at ``q_now``."""
    c = table.c
    where: list[ColumnElement[bool]] = [
        c.task == bindparam("k_task", type_=c.task.type),
        c.partition == bindparam("k_partition", type_=c.partition.type),
        c.instance == bindparam("k_instance", type_=c.instance.type),
    ]
    if leased:
        where.append(c.lease == bindparam("k_lease", type_=c.lease.type))
    return (
        update(table)
        .where(*where)
        .values(
            ready_at=OUT_OF_INDEX,
            locked_until=None,
            lease=None,
            locked_by=None,
            quarantined_at=bindparam("q_now", type_=c.quarantined_at.type),
            quarantine_reason=bindparam("q_reason", type_=c.quarantine_reason.type),
        )
    )


def quarantine_params(
    key: InstanceKey, lease: str | None, reason: str, now: datetime
) -> dict[str, Any]:
    """The parameters of :func:`quarantine_statement`."""
    params: dict[str, Any] = {
        "k_task": key.task,
        "k_partition": key.partition,
        "k_instance": key.instance,
        "q_now": now,
        "q_reason": reason[:REASON_CHARS],
    }
    if lease is not None:
        params["k_lease"] = lease
    return params


def list_statement(table: Table, task: str | None, limit: int) -> Select[Any]:
    """The quarantined rows (of ``task``), by key: read through the ``quarantined`` index."""
    c = table.c
    stmt = select(c.task, c.partition, c.instance, c.quarantine_reason, c.quarantined_at).where(
        c.quarantined_at.is_not(None)
    )
    if task is not None:
        stmt = stmt.where(c.task == task)
    return stmt.order_by(c.task, c.partition, c.instance).limit(limit)


def listed(rows: Any) -> list[Quarantined]:
    """:class:`Quarantined` entries from the rows of :func:`list_statement`."""
    return [
        Quarantined(InstanceKey(row.task, row.partition, row.instance), row[3] or "", row[4])
        for row in rows
    ]
