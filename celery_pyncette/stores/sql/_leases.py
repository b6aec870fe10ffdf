"""Lease extensions of :class:`~celery_pyncette.stores.sql.SQLStore`: a heartbeat (and the
worker's token swap) on one row, and a whole published batch in one statement.

``extend_leases`` names the rows by key *and* lease token, so one ``UPDATE`` per task partition
(per chunk of keys) extends exactly the leases still held. Which items were lost is then known
exactly: on PostgreSQL and SQLite the ``UPDATE ... RETURNING`` names the rows it changed; on
MySQL/MariaDB, which cannot return from an ``UPDATE``, the changed-row count usually shows that
every lease was held, and only when it falls short does a ``SELECT`` in the same transaction (the
updated rows stay locked by it) read which leases differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Table, Text, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.sql._dialects import Dialect, chunks

#: Keys per statement: each key takes three parameters (its name twice and its lease), which
#: stays below SQLite's oldest limit of 999 bound parameters.
LEASE_CHUNK = 300

Pair = tuple[str, str]  # (instance name, lease)


@dataclass(frozen=True)
class LeaseStatements:
    """The statements of this module, built once per store (compiling costs more than running).

    Parameters: ``k_task``, ``k_partition``, ``k_instance``, ``k_lease`` name one leased row;
    ``until`` is the new expiry and ``new_lease`` the token that replaces ``k_lease``.
    """

    swap: Executable
    extend_many: Executable
    leases_of: Executable
    returning: bool


def lease_statements(table: Table, dialect: Dialect) -> LeaseStatements:
    """Build the statements for ``table`` on ``dialect``."""
    c = table.c
    key = (
        c.task == bindparam("k_task", type_=c.task.type),
        c.partition == bindparam("k_partition", type_=c.partition.type),
    )
    until = bindparam("until", type_=c.locked_until.type)
    expiry = {"locked_until": until, "ready_at": dialect.greatest(c.next_run, until)}
    swap = (
        update(table)
        .where(
            *key,
            c.instance == bindparam("k_instance", type_=c.instance.type),
            c.lease == bindparam("k_lease", type_=c.lease.type),
        )
        .values(lease=bindparam("new_lease", type_=c.lease.type), **expiry)
    )
    named = c.instance.in_(bindparam("names", expanding=True))
    if dialect.name == "postgresql":
        # Two array parameters joined by unnest: a short statement whatever the batch size
        # (psycopg caches the conversion of short statements only), each row found by its key.
        pairs = (
            func.unnest(
                bindparam("pg_names", type_=ARRAY(Text)), bindparam("pg_leases", type_=ARRAY(Text))
            )
            .table_valued("instance", "lease")
            .render_derived(name="held")
        )
        held = (c.instance == pairs.c.instance, c.lease == pairs.c.lease)
    else:
        held = (tuple_(c.instance, c.lease).in_(bindparam("pairs", expanding=True)), named)
    extend_many = update(table).where(*key, *held).values(**expiry)
    returning = dialect.name in ("postgresql", "sqlite")
    if returning:
        extend_many = extend_many.returning(c.instance, c.lease)
    leases_of = select(c.instance, c.lease).where(*key, named)
    return LeaseStatements(swap, extend_many, leases_of, returning)


def swap_params(
    key: InstanceKey, lease: str, until: datetime, new_lease: str | None
) -> dict[str, Any]:
    """The parameters of :attr:`LeaseStatements.swap` (``new_lease`` ``None``: keep ``lease``)."""
    return {
        "k_task": key.task,
        "k_partition": key.partition,
        "k_instance": key.instance,
        "k_lease": lease,
        "new_lease": new_lease or lease,
        "until": until,
    }


def group_items(
    items: Sequence[tuple[InstanceKey, str]],
) -> dict[tuple[str, int], list[Pair]]:
    """The distinct (instance, lease) pairs of ``items`` by task partition."""
    groups: defaultdict[tuple[str, int], dict[Pair, None]] = defaultdict(dict)
    for key, lease in items:
        groups[(key.task, key.partition)][(key.instance, lease)] = None
    return {part: list(pairs) for part, pairs in groups.items()}


def extend_group(
    conn: Connection,
    statements: LeaseStatements,
    part: tuple[str, int],
    pairs: Sequence[Pair],
    until: datetime,
) -> set[Pair]:
    """Extend the held leases among ``pairs`` (one task partition) to ``until``; return the
    pairs that were held (and are now extended). Runs in the caller's transaction."""
    held: set[Pair] = set()
    for chunk in chunks(list(pairs), LEASE_CHUNK):
        params = {
            "k_task": part[0],
            "k_partition": part[1],
            "names": sorted({name for name, _ in chunk}),
            "pairs": list(chunk),
            "pg_names": [name for name, _ in chunk],
            "pg_leases": [lease for _, lease in chunk],
            "until": until,
        }
        result = conn.execute(statements.extend_many, params)
        if statements.returning:
            held.update((str(name), str(lease)) for name, lease in result)
            continue
        if result.rowcount == len(chunk):
            held.update(chunk)
            continue
        wanted = set(chunk)
        current = conn.execute(statements.leases_of, params)
        held.update(pair for pair in ((str(n), t) for n, t in current) if pair in wanted)
    return held


def extend_batch(
    run: Callable[[Callable[[Connection], set[tuple[str, int, str, str]]], bool], Any],
    statements: LeaseStatements,
    items: Sequence[tuple[InstanceKey, str]],
    until: datetime,
) -> list[InstanceKey]:
    """``Store.extend_leases``; return the keys whose lease was lost. ``run(work, single)`` runs
    the statements: with ``RETURNING`` each statement stands alone (exact by itself), else
    together in one write transaction (the ``UPDATE`` and the ``SELECT`` that follows it)."""
    groups = group_items(items)
    if not groups:
        return []

    def work(conn: Connection) -> set[tuple[str, int, str, str]]:
        held: set[tuple[str, int, str, str]] = set()
        for part, pairs in groups.items():
            found = extend_group(conn, statements, part, pairs, until)
            held.update((part[0], part[1], name, lease) for name, lease in found)
        return held

    held: set[tuple[str, int, str, str]] = run(work, statements.returning)
    return [k for k, lease in items if (k.task, k.partition, k.instance, lease) not in held]
