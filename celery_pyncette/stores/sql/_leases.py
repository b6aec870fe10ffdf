"""Lease extensions of :class:`~celery_pyncette.stores.sql.SQLStore`: a heartbeat (and the
worker's token swap) on one row, and a whole published batch in one round trip.

``extend_leases`` names the rows by key *and* lease token, so only the leases still held are
extended, and which items were lost is known exactly. SQLite and MySQL/MariaDB run one
``UPDATE ... WHERE instance IN (...) AND (instance, lease) IN (...)`` per task partition (per
chunk of keys); PostgreSQL runs the single-row ``UPDATE`` once per item as one ``executemany``,
which psycopg pipelines (one round trip), so that each row is found through the primary key
whatever the planner's statistics. SQLite's ``RETURNING`` names the rows it changed; elsewhere
the changed-row count usually shows that every lease was held, and only when it falls short
does a ``SELECT`` in the same transaction (the updated rows stay locked by it) read which
leases differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Table, bindparam, select, tuple_, update
from sqlalchemy.engine import Connection

from celery_pyncette.stores.base import InstanceKey, LeaseRef
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
    #: Send :attr:`swap` once per item as one ``executemany`` (PostgreSQL: psycopg pipelines
    #: it, one round trip) instead of :attr:`extend_many`: each row is then found through the
    #: primary key whatever the planner's statistics (a multi-row ``UPDATE`` on a table not
    #: analyzed yet, as after a bulk fill, scans the whole task partition).
    one_by_one: bool = False


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
    held = tuple_(c.instance, c.lease).in_(bindparam("pairs", expanding=True))
    extend_many = update(table).where(*key, named, held).values(**expiry)
    returning = dialect.name == "sqlite"
    if returning:
        extend_many = extend_many.returning(c.instance, c.lease)
    leases_of = select(c.instance, c.lease).where(*key, named)
    one_by_one = dialect.name == "postgresql"
    return LeaseStatements(swap, extend_many, leases_of, returning, one_by_one)


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
    items: Sequence[LeaseRef],
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
            "until": until,
        }
        if statements.one_by_one:
            key = InstanceKey(part[0], part[1], "")
            rows = [swap_params(replace(key, instance=n), t, until, None) for n, t in chunk]
            result = conn.execute(statements.swap, rows)
        else:
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
    items: Sequence[LeaseRef],
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
