"""The statements that differ per server: claiming a batch, and the atomic upserts.

Everything else :class:`~celery_pyncette.stores.sql.SQLStore` runs is portable SQLAlchemy Core.
Each function runs inside a transaction the store opened (on SQLite a ``BEGIN IMMEDIATE`` one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Index,
    Row,
    Table,
    Text,
    TextClause,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import ReflectedIndex

from celery_pyncette._ids import lease_tokens
from celery_pyncette.stores.sql._rows import readable_columns
from celery_pyncette.stores.sql._schema import UTCDateTime

#: Columns that identify an instance.
KEY_COLUMNS = ("task", "partition", "instance")
#: Columns an upsert replaces (the lease is cleared; last_run_at / last_status are kept). MySQL's
#: ON DUPLICATE KEY UPDATE assigns in this order and later assignments see earlier ones, so the
#: columns its conditions read come after the ones they decide: next_run and ready_at before spec
#: and the quarantine marker (the kept-next-run test), locked_until last (the lock test). The
#: quarantine marker is written back to NULL: an upsert repairs a quarantined instance.
REPLACED_COLUMNS = (
    "next_run",
    "ready_at",
    "spec",
    "args",
    "lease",
    "locked_by",
    "quarantined_at",
    "quarantine_reason",
    "locked_until",
)
#: The earliest time a MySQL DATETIME holds.
MYSQL_EARLIEST = datetime(1000, 1, 1, tzinfo=timezone.utc)
#: Most keys or rows in one statement (``IN (...)`` lists, ``CASE`` arms, multi-row inserts).
CHUNK = 500

#: (task, partition, instance)
Key = tuple[str, int, str]
#: What an upsert did: the keys refused as locked, and the next run each written key now has.
Upserted = tuple[set[Key], dict[Key, datetime]]


class Dialect:
    """Statements for one server family; the default implementation is SQLite's."""

    name = "sqlite"
    #: True when :meth:`claim` runs a single statement (atomic without a transaction around it).
    claims_in_one_statement = False

    def _insert(self, table: Table) -> Any:
        """An INSERT that has ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        return sqlite.insert(table)

    def index_is_current(self, index: Index, found: ReflectedIndex) -> bool:
        """Whether ``found``, the server's index of the same name, is what ``index`` defines
        now; :meth:`SQLStore.setup` builds it again when not."""
        return True

    def clock(self) -> ColumnElement[datetime] | None:
        """The server's current time (UTC, microseconds), or ``None``: SQLite runs in-process, so
        its clock is this machine's."""
        return None

    def greatest(
        self, left: ColumnElement[Any], when: datetime | ColumnElement[Any]
    ) -> ColumnElement[datetime]:
        """``max(left, when)`` for two non-null times (``when`` a value or an expression)."""
        return func.max(left, _time(when), type_=UTCDateTime())

    def readable_time(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """True when the stored time ``column`` reads as a time (SQLite keeps any text in any
        column): an upsert keeps only a next run it can return."""
        return func.datetime(column).is_not(None)

    def __init__(self) -> None:
        self._probes: dict[tuple[str, int], Any] = {}

    def due_groups(
        self, conn: Connection, table: Table, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """The groups holding a row with ``ready_at <= now``, in one statement.

        ``SELECT (SELECT ready_at ... WHERE task = :t0 AND partition = :p0 ORDER BY ready_at
        LIMIT 1) <= :now AS g0, ...``: each sub-select reads the first entry of its group's range
        of the ``(task, partition, ready_at)`` index. NULL (a group with no row) is not due.
        """
        values: dict[str, Any] = {"now": now}
        for n, (task, partition) in enumerate(groups):
            values[f"t{n}"], values[f"p{n}"] = task, partition
        flags = conn.execute(self._probe(table, len(groups)), values).one()
        return {group for group, flag in zip(groups, flags, strict=True) if flag}

    def _probe(self, table: Table, size: int) -> Any:
        """The poll statement for ``size`` groups, built once per size (building it is the slow
        part)."""
        key = (table.name, size)
        if key not in self._probes:
            c = table.c
            now = bindparam("now", type_=c.ready_at.type)
            self._probes[key] = select(
                *(
                    (
                        select(c.ready_at)
                        .where(
                            c.task == bindparam(f"t{n}", type_=c.task.type),
                            c.partition == bindparam(f"p{n}", type_=c.partition.type),
                        )
                        .order_by(c.ready_at)
                        .limit(1)
                        .scalar_subquery()
                        <= now
                    ).label(f"g{n}")
                    for n in range(size)
                )
            )
        return self._probes[key]

    def claim(
        self,
        conn: Connection,
        table: Table,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        until: datetime,
        owner: str,
    ) -> list[tuple[Row[Any], str]]:
        """Lease up to ``limit`` due rows; return each (row before the claim, its new lease).

        The rows come back oldest first, holding the record columns undecoded (see
        :func:`~celery_pyncette.stores.sql._rows.readable_columns`). Default: select the due rows
        under a lock, then update exactly those keys in one statement, each with its own lease
        token.
        """
        t = table.c
        due = (
            select(*readable_columns(table, self.name))
            .where(t.task == task, t.partition == partition, t.ready_at <= now)
            .order_by(t.ready_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = conn.execute(due).all()
        if not rows:
            return []
        leases = dict(zip([row.instance for row in rows], lease_tokens(len(rows)), strict=True))
        for chunk in chunks(list(leases), CHUNK):
            conn.execute(
                update(table)
                .where(t.task == task, t.partition == partition, t.instance.in_(chunk))
                .values(
                    locked_until=until,
                    ready_at=self.greatest(t.next_run, until),
                    locked_by=owner,
                    lease=case({name: leases[name] for name in chunk}, value=t.instance),
                )
            )
        return [(row, leases[row.instance]) for row in rows]

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        now: datetime,
        force: bool,
        keep_next_run: bool = False,
    ) -> Upserted:
        """Insert or replace instances (distinct keys, one statement); return the keys refused,
        unchanged, because they were locked at ``now`` (none with ``force``), and the next run
        of each key written (with ``keep_next_run``, an existing healthy row whose spec text
        equals the new one keeps its own: decided by the statement, on the row it replaces).

        The rows go as parameter sets of one cached single-row statement, which SQLAlchemy sends
        as one multi-row ``INSERT`` ("insertmanyvalues"): compiling a new 500-row statement for
        every batch would cost more than running it.
        """
        stmt = self._insert(table)
        new = {name: stmt.excluded[name] for name in REPLACED_COLUMNS}
        if keep_next_run:
            new.update(self._kept_next_run(table, new["spec"], new["next_run"]))
        stmt = stmt.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_=new,
            where=None if force else _unlocked(table, now),
        )
        # A row comes back when it was inserted or replaced, none when the WHERE kept it.
        c = table.c
        returning = stmt.returning(c.task, c.partition, c.instance, c.next_run)
        written = conn.execute(returning, [dict(row) for row in rows]).all()
        next_runs = {(row[0], row[1], row[2]): row[3] for row in written}
        return _keys(rows) - set(next_runs), next_runs

    def _kept_next_run(
        self, table: Table, new_spec: ColumnElement[Any], new_next_run: ColumnElement[Any]
    ) -> dict[str, ColumnElement[Any]]:
        """``next_run`` and ``ready_at`` of an upsert that keeps the stored next run of a healthy
        row (not quarantined, its next run readable) whose spec text equals the new one (both are
        written as canonical text, see :func:`~celery_pyncette.stores.base.spec_text`), and takes
        the new one otherwise."""
        c = table.c
        same = and_(c.spec == new_spec, c.quarantined_at.is_(None), self.readable_time(c.next_run))
        kept = case((same, c.next_run), else_=new_next_run)
        return {"next_run": kept, "ready_at": kept}

    def insert_missing(self, conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
        """Insert a row unless its primary key exists."""
        conn.execute(self._insert(table).values(**values).on_conflict_do_nothing())

    def bump(self, conn: Connection, table: Table, name: str) -> None:
        """Add one to the counter ``name`` of a (name, value) table, creating it at 1."""
        stmt = self._insert(table).values(name=name, value=1)
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["name"], set_={"value": table.c.value + 1})
        )


class PostgresDialect(Dialect):
    """PostgreSQL: one ``WITH due AS MATERIALIZED (SELECT ... FOR UPDATE SKIP LOCKED)
    UPDATE ... FROM due ... RETURNING`` statement."""

    name = "postgresql"
    claims_in_one_statement = True

    def __init__(self) -> None:
        super().__init__()
        self._lateral_probes: dict[str, TextClause] = {}

    def index_is_current(self, index: Index, found: ReflectedIndex) -> bool:
        # Tables made before the ready index was partial have it without the predicate.
        wanted = index.dialect_options["postgresql"]["where"] is not None
        return wanted == ("postgresql_where" in found.get("dialect_options", {}))

    def clock(self) -> ColumnElement[datetime] | None:
        # clock_timestamp(), not now(): now() is the start of the transaction.
        return func.clock_timestamp(type_=UTCDateTime())

    def due_groups(
        self, conn: Connection, table: Table, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """One ``LATERAL`` probe per group, the groups passed as two arrays: each reads the first
        entry of its range of the ``(task, partition, ready_at)`` index. One small statement
        whatever the number of groups, so its plan is cached and reused: 32 scalar sub-selects
        instead are planned again on every call once the table has statistics."""
        name = conn.dialect.identifier_preparer.format_table(table)
        probe = self._lateral_probes.get(name)
        if probe is None:
            probe = self._lateral_probes[name] = text(
                "SELECT g.task, g.partition"
                " FROM unnest(CAST(:tasks AS text[]), CAST(:partitions AS integer[]))"
                " AS g(task, partition)"
                f" CROSS JOIN LATERAL (SELECT 1 FROM {name} AS i"
                " WHERE i.task = g.task AND i.partition = g.partition AND i.ready_at <= :now"
                " ORDER BY i.ready_at LIMIT 1) AS first"
            ).bindparams(bindparam("now", type_=table.c.ready_at.type))
        rows = conn.execute(
            probe,
            {
                "tasks": [task for task, _ in groups],
                "partitions": [partition for _, partition in groups],
                "now": now,
            },
        ).all()
        return {(row.task, row.partition) for row in rows}

    def greatest(
        self, left: ColumnElement[Any], when: datetime | ColumnElement[Any]
    ) -> ColumnElement[datetime]:
        return func.greatest(left, _time(when), type_=UTCDateTime())

    def readable_time(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        # timestamptz holds 'infinity', which psycopg cannot return.
        return func.isfinite(column)

    def claim(
        self,
        conn: Connection,
        table: Table,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        until: datetime,
        owner: str,
    ) -> list[tuple[Row[Any], str]]:
        t = table.c
        # The rows are joined back by their physical address (a Tid Scan per row): joining on the
        # key lets the planner pick a nested loop over the whole partition when the table's
        # statistics are stale, as they are right after a bulk fill.
        row_id: ColumnClause[Any] = column("ctid", _selectable=table)
        due = (
            select(row_id.label("row_id"), t.ready_at.label("was_ready_at"))
            .where(t.task == task, t.partition == partition, t.ready_at <= now)
            .order_by(t.ready_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            # A sub-select in FROM may be run again for every row the join meets, and a re-run
            # skips the rows this statement already updated and locks further ones past LIMIT.
            # A materialised CTE runs exactly once.
            .cte("due")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        claimed = conn.execute(
            update(table)
            .where(
                t.task == task,
                t.partition == partition,
                row_id == due.c.row_id,
            )
            .values(
                locked_until=until,
                ready_at=self.greatest(t.next_run, until),
                locked_by=owner,
                lease=func.replace(cast(func.gen_random_uuid(), Text), "-", ""),
            )
            .returning(*readable_columns(table, self.name), due.c.was_ready_at)
        ).all()
        # RETURNING follows no ORDER BY: put the batch back in due order.
        ordered = sorted(claimed, key=lambda row: (row.was_ready_at, row.instance))
        return [(row, row.lease) for row in ordered]

    def _insert(self, table: Table) -> Any:
        return postgresql.insert(table)


class MySQLDialect(Dialect):
    """MySQL 8 / MariaDB 10.6+: ``SELECT ... FOR UPDATE SKIP LOCKED``, then one ``UPDATE``."""

    name = "mysql"

    def clock(self) -> ColumnElement[datetime] | None:
        return func.utc_timestamp(6, type_=UTCDateTime())

    def greatest(
        self, left: ColumnElement[Any], when: datetime | ColumnElement[Any]
    ) -> ColumnElement[datetime]:
        return func.greatest(left, _time(when), type_=UTCDateTime())

    def readable_time(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        # The zero date (stored unless NO_ZERO_DATE is set) is before DATETIME's range.
        return column >= _time(MYSQL_EARLIEST)

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        now: datetime,
        force: bool,
        keep_next_run: bool = False,
    ) -> Upserted:
        # ON DUPLICATE KEY UPDATE has no WHERE: each assignment keeps the old value while the
        # row is locked. MySQL assigns left to right and later assignments see earlier ones,
        # so the columns the conditions read (spec, the quarantine marker, locked_until) are
        # assigned after the ones they decide (see REPLACED_COLUMNS).
        # One multi-row VALUES statement (PyMySQL cannot batch parameter sets whose
        # ON DUPLICATE KEY UPDATE part has parameters of its own, as the lock check does).
        stmt = mysql.insert(table).values(list(rows))
        free = _unlocked(table, now)
        new: dict[str, ColumnElement[Any]] = {
            name: stmt.inserted[name] for name in REPLACED_COLUMNS
        }
        if keep_next_run:
            new.update(self._kept_next_run(table, new["spec"], new["next_run"]))
        assignments: list[tuple[str, Any]] = []
        for name in REPLACED_COLUMNS[:-1]:
            assignments.append(
                (name, new[name] if force else case((free, new[name]), else_=table.c[name]))
            )
        unlocked_value = null() if force else case((free, null()), else_=table.c.locked_until)
        assignments.append(("locked_until", unlocked_value))
        conn.execute(stmt.on_duplicate_key_update(assignments))
        if force and not keep_next_run:
            return set(), {_key(row): row["next_run"] for row in rows}
        # The rows are now locked by this transaction: those still leased were refused; the
        # others hold the next run written (read back only when it may have been kept).
        c = table.c
        refused: set[Key] = set()
        next_runs: dict[Key, datetime] = {}
        for (task, partition), names in _by_partition(rows).items():
            for chunk in chunks(names, CHUNK):
                where = [c.task == task, c.partition == partition, c.instance.in_(chunk)]
                if not keep_next_run:
                    where.append(c.locked_until.is_not(None))
                found = conn.execute(select(c.instance, c.next_run, c.locked_until).where(*where))
                for name, next_run, locked_until in found:
                    if locked_until is not None:
                        refused.add((task, partition, name))
                    else:
                        next_runs[(task, partition, name)] = next_run
        if not keep_next_run:
            next_runs = {_key(row): row["next_run"] for row in rows if _key(row) not in refused}
        return refused, next_runs

    def insert_missing(self, conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
        first = next(iter(values))
        stmt = mysql.insert(table).values(**values)
        conn.execute(stmt.on_duplicate_key_update({first: table.c[first]}))

    def bump(self, conn: Connection, table: Table, name: str) -> None:
        stmt = mysql.insert(table).values(name=name, value=1)
        conn.execute(stmt.on_duplicate_key_update(value=table.c.value + 1))


def _time(when: datetime | ColumnElement[Any]) -> ColumnElement[Any]:
    return literal(when, UTCDateTime()) if isinstance(when, datetime) else when


def _unlocked(table: Table, now: datetime) -> ColumnElement[bool]:
    return or_(table.c.locked_until.is_(None), table.c.locked_until <= now)


def _key(row: Mapping[str, Any]) -> Key:
    return (row["task"], row["partition"], row["instance"])


def _keys(rows: Sequence[Mapping[str, Any]]) -> set[Key]:
    return {_key(row) for row in rows}


def _by_partition(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], list[str]]:
    groups: dict[tuple[str, int], list[str]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["partition"]), []).append(row["instance"])
    return groups


def dialect_for(backend: str) -> Dialect:
    """The statements for a SQLAlchemy backend name."""
    if backend == "postgresql":
        return PostgresDialect()
    if backend in {"mysql", "mariadb"}:
        return MySQLDialect()
    return Dialect()


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` cut into slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]
