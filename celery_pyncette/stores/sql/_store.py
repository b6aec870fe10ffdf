"""``SQLStore``: the store contract on SQLite, PostgreSQL and MySQL/MariaDB (SQLAlchemy Core)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Executable,
    delete,
    func,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from celery_pyncette.errors import (
    ConfigurationError,
    CorruptRecordError,
    LeaseLostError,
    StoreError,
    TaskLockedError,
)
from celery_pyncette.stores._checks import (
    check_aware,
    check_claim,
    check_limit,
    check_next_runs,
)
from celery_pyncette.stores._history import Run, check_history
from celery_pyncette.stores.base import (
    ClaimedBatch,
    ClaimedRecord,
    Commit,
    InstanceKey,
    InstanceRecord,
    LeaseRef,
    Quarantined,
    RunLog,
    Status,
    Store,
    Strike,
)
from celery_pyncette.stores.sql import _strikes as sql_strikes
from celery_pyncette.stores.sql._dialects import CHUNK, chunks, dialect_for
from celery_pyncette.stores.sql._engine import (
    NO_BEGIN_OPTION,
    WRITE_OPTION,
    LazyEngine,
    is_missing_table,
    is_retryable,
    parse_url,
)
from celery_pyncette.stores.sql._leases import extend_batch, lease_statements, swap_params
from celery_pyncette.stores.sql._migrate import check_schema, create_schema
from celery_pyncette.stores.sql._quarantine import (
    list_statement,
    listed,
    quarantine_params,
    quarantine_statement,
)
from celery_pyncette.stores.sql._releases import (
    commit_batch,
    key_params,
    read_run_log,
    single_row_statements,
    unlock_batch,
)
from celery_pyncette.stores.sql._rows import decode, decode_claimed, readable_columns, written_row
from celery_pyncette.stores.sql._schema import build_schema

T = TypeVar("T")

#: How often a transaction the server rolled back (deadlock, serialisation failure) is run.
ATTEMPTS = 3

_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}


class SQLStore(Store):
    """``sqlite:///path``, ``postgresql[+psycopg]://...``, ``mysql[+pymysql]://...``.

    Plain ``postgresql://`` runs on psycopg 3 and plain ``mysql://`` on PyMySQL. Tables are
    ``{namespace}_instances``, ``{namespace}_strikes`` and ``{namespace}_meta``; see
    ``docs/stores/`` for the schema and the claim statement of each server.
    """

    def __init__(
        self, url: str, *, namespace: str = "pyncette", skip_table_create: bool = False
    ) -> None:
        super().__init__(url, namespace=namespace, skip_table_create=skip_table_create)
        self._url = parse_url(url)
        self._schema = build_schema(namespace)
        self._dialect = dialect_for(self._url.get_backend_name())
        self._engine = LazyEngine(self._url, f"celery-pyncette:{namespace}")
        self._label = self._url.render_as_string(hide_password=True)
        # psycopg switches autocommit without a round trip; PyMySQL sends a query each way, and
        # SQLite is in-process (and takes its write lock at BEGIN, so only its reads skip it).
        self._autocommit_single = self._dialect.name == "postgresql"
        self._single_reads_without_begin = self._dialect.name == "sqlite"
        # Single-row statements, built once: building and cache-keying a statement costs more
        # than running it on a local server.
        self._single = single_row_statements(self._schema.instances, self._dialect)
        self._quarantine = {
            leased: quarantine_statement(self._schema.instances, leased) for leased in (False, True)
        }
        self._leases = lease_statements(self._schema.instances, self._dialect)

    def __repr__(self) -> str:
        return f"SQLStore({self._label!r}, namespace={self.namespace!r})"

    # --- plumbing --------------------------------------------------------------------------------

    def _run(self, work: Callable[[Connection], T], *, write: bool, single: bool = False) -> T:
        """Run ``work`` in one transaction; driver errors become :class:`StoreError`.

        ``single``: each statement of ``work`` stands alone (one statement, or independent
        reads), so on PostgreSQL it runs without ``BEGIN`` / ``COMMIT``: two round trips fewer.
        So does a single read on SQLite (a write there still takes the write lock at ``BEGIN``).
        A transaction the server rolled back for a deadlock is run again; a read whose connection
        died under it is run once more. A write on a dead connection is not: it may have committed.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._connect() as conn:
                    if single and self._autocommit_single:
                        conn.execution_options(isolation_level="AUTOCOMMIT")
                        return work(conn)
                    if single and not write and self._single_reads_without_begin:
                        conn.execution_options(**{NO_BEGIN_OPTION: True})
                        return work(conn)
                    if write:
                        conn.execution_options(**{WRITE_OPTION: True})
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                lost_read = not write and exc.connection_invalidated and attempt == 1
                again = is_retryable(exc) or lost_read
                if not again or attempt >= ATTEMPTS:
                    raise self._error(exc) from exc
                time.sleep(random.uniform(0, 0.005 * attempt))
            except StatementError as exc:
                if isinstance(exc.orig, (TypeError, ValueError)):
                    # A value the column types refuse (a naive datetime, arguments that are not
                    # JSON): the caller's mistake, not the store's.
                    raise exc.orig from None
                raise self._error(exc) from exc
            except SQLAlchemyError as exc:
                raise self._error(exc) from exc

    def _connect(self) -> Connection:
        try:
            engine = self._engine.get()
        except ImportError as exc:
            extra = _EXTRAS.get(exc.name or "", "all")
            raise ConfigurationError(
                f"SQLStore needs the {exc.name} driver for {self._url.drivername}: "
                f"pip install 'celery-pyncette[{extra}]'"
            ) from exc
        return engine.connect()

    def _error(self, exc: SQLAlchemyError) -> StoreError:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        # The first line is enough for a log; the whole driver error stays chained as the cause.
        first_line = next(iter(str(cause).strip().splitlines()), "")
        detail = f"{type(cause).__name__}: {first_line}"
        if is_missing_table(exc):
            return StoreError(
                f"{self._label}: the tables of namespace {self.namespace!r} are missing "
                f"({detail}); create them with `celery pyncette migrate` or store.setup()"
            )
        return StoreError(f"{self._label}: {detail}")

    def _where_key(self, key: InstanceKey) -> tuple[ColumnElement[bool], ...]:
        c = self._schema.instances.c
        return (c.task == key.task, c.partition == key.partition, c.instance == key.instance)

    # --- schema ----------------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the tables and indexes that are missing and rebuild an index defined differently
        by an earlier version (idempotent), or with ``skip_table_create`` check that the tables
        exist; raises :class:`StoreError` otherwise."""
        if self.skip_table_create:
            self._run(lambda conn: check_schema(conn, self._schema, self._label), write=False)
            return
        # Another process creating the same tables makes a CREATE fail ("already exists"); each
        # such failure means that process made progress, so a few more looks always finish.
        attempts = ATTEMPTS + 2 * len(self._schema.tables) + 4
        for attempt in range(1, attempts + 1):
            try:
                self._run(self._create_schema, write=True)
                return
            except StoreError:
                if attempt == attempts:
                    raise

    def _create_schema(self, conn: Connection) -> None:
        create_schema(conn, self._schema, self._dialect)
        self._dialect.insert_missing(
            conn, self._schema.meta, {"name": sql_strikes.STRIKES_COUNTER, "value": 0}
        )

    def close(self) -> None:
        self._engine.dispose()

    def after_fork(self) -> None:
        self._engine.after_fork()

    # --- claims and leases -----------------------------------------------------------------------

    def claim(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> ClaimedBatch:
        """Lease the due rows in one statement, decode them one by one, and quarantine (under
        the lease just taken) those that cannot be decoded."""
        check_claim(now, limit, lease_duration)
        until = now + lease_duration
        table = self._schema.instances
        claimed = self._run(
            lambda conn: self._dialect.claim(
                conn, table, task, partition, now, limit, until, owner
            ),
            write=True,
            single=self._dialect.claims_in_one_statement,
        )
        records: list[ClaimedRecord] = []
        corrupt: list[tuple[InstanceKey, str, str]] = []
        for row, lease in claimed:
            try:
                records.append(decode_claimed(row, until, lease, owner))
            except CorruptRecordError as exc:
                corrupt.append((exc.key, lease, exc.reason))  # type: ignore[arg-type]
        quarantined = [
            Quarantined(key, reason, now)
            for key, lease, reason in corrupt
            if self.quarantine(key, lease, reason, now)
        ]
        return ClaimedBatch(now, records, quarantined)

    def due_partitions(
        self, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """Exactly the groups holding an instance with ``ready_at <= now``.

        One statement per 500 groups: on PostgreSQL a ``LATERAL`` probe per group (see
        ``PostgresDialect.due_groups``), elsewhere ``SELECT (SELECT ready_at ... WHERE task = ?
        AND partition = ? ORDER BY ready_at LIMIT 1) <= :now AS g0, ...``. Each probe is a single
        lookup at the start of the group's range of the ``(task, partition, ready_at)`` index,
        whatever the data and the planner's estimates, so a poll costs the same with ten
        instances or ten million, due or not.
        """
        check_aware("now", now)
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return set()

        table = self._schema.instances

        def work(conn: Connection) -> set[tuple[str, int]]:
            found: set[tuple[str, int]] = set()
            for chunk in chunks(wanted, CHUNK):
                found |= self._dialect.due_groups(conn, table, chunk, now)
            return found

        return self._run(work, write=False, single=True)

    def server_time(self) -> datetime | None:
        """PostgreSQL's ``clock_timestamp()``, MySQL/MariaDB's ``UTC_TIMESTAMP(6)``; ``None`` on
        SQLite (one machine: its clock is the local one)."""
        clock = self._dialect.clock()
        if clock is None:
            return None
        value = self._run(
            lambda conn: conn.execute(select(clock)).scalar_one(), write=False, single=True
        )
        assert isinstance(value, datetime)
        return value

    def commit(
        self,
        key: InstanceKey,
        lease: str,
        next_run: datetime | None,
        now: datetime,
        status: Status = "success",
        *,
        run: Run | None = None,
        history_size: int = 0,
        max_runs: int | None = None,
    ) -> None:
        check_next_runs(now, [next_run])
        check_history(history_size, max_runs)
        if max_runs is not None:  # the count decides: read under the lock (commit_many)
            item = Commit(key, lease, next_run, status, run, history_size, max_runs)
            if self.commit_many([item], now):
                raise LeaseLostError(f"lease {lease} of {key} is lost")
            return
        stmt, params = self._single.commit_of(
            self._dialect.name, key, lease, next_run, now, status, run, history_size
        )
        self._leased_write(stmt, params)

    def run_log(self, key: InstanceKey, limit: int) -> RunLog:
        check_limit(limit)
        table = self._schema.instances
        return self._run(lambda conn: read_run_log(conn, table, key, limit), write=False)

    def commit_many(self, commits: Sequence[Commit], now: datetime) -> list[InstanceKey]:
        """One transaction: lock the rows, check every lease, then write the held rows (their
        count of settled runs and history with them)."""
        check_next_runs(now, (item.next_run for item in commits))
        for item in commits:
            check_history(item.history_size, item.max_runs)
        if not commits:
            return []

        def work(conn: Connection) -> list[bool]:
            return commit_batch(conn, self._schema.instances, commits, now, self._dialect.name)

        held = self._run(work, write=True)
        return [item.key for item, ok in zip(commits, held, strict=True) if not ok]

    def unlock(
        self, key: InstanceKey, lease: str, *, run: Run | None = None, history_size: int = 0
    ) -> None:
        check_history(history_size, None)
        self._leased_write(
            *self._single.unlock_of(self._dialect.name, key, lease, run, history_size)
        )

    def _record_run(self, key: InstanceKey, run: Run, history_size: int) -> bool:
        """One ``UPDATE`` of the history column, as the commit's (see ``_history``)."""
        entry = self._single.history_params(self._dialect.name, run, history_size)
        return self._rows_written(self._single.record, {**key_params(key), **entry}) > 0

    def unlock_many(self, items: Sequence[LeaseRef]) -> list[InstanceKey]:
        if not items:
            return []

        def work(conn: Connection) -> list[bool]:
            return unlock_batch(conn, self._schema.instances, items)

        held = self._run(work, write=True)
        return [key for (key, _), ok in zip(items, held, strict=True) if not ok]

    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None:
        check_aware("until", until)
        self._leased_write(self._leases.swap, swap_params(key, lease, until, new_lease))

    def extend_leases(self, items: Sequence[LeaseRef], until: datetime) -> list[InstanceKey]:
        """One transaction, one ``UPDATE`` per task partition (see ``_leases``)."""
        check_aware("until", until)
        run = lambda work, single: self._run(work, write=True, single=single)  # noqa: E731
        return extend_batch(run, self._leases, items, until)

    def _leased_write(self, stmt: Executable, params: dict[str, Any]) -> None:
        """Run a single-row statement guarded by the lease in ``params``; raise
        :class:`LeaseLostError` when it changed no row (the lease is no longer held)."""
        if self._rows_written(stmt, params):
            return
        key = InstanceKey(params["k_task"], params["k_partition"], params["k_instance"])
        raise LeaseLostError(f"lease {params['k_lease']} of {key} is lost")

    def _rows_written(self, stmt: Executable, params: dict[str, Any] | None = None) -> int:
        """Run one single-row write statement; the number of rows it matched."""
        return self._run(lambda conn: conn.execute(stmt, params).rowcount, write=True, single=True)

    # --- instances -------------------------------------------------------------------------------

    def upsert(
        self,
        record: InstanceRecord,
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> datetime:
        check_next_runs(now, [record.next_run])
        row = written_row(record)
        table = self._schema.instances

        def work(conn: Connection) -> datetime:
            refused, next_runs = self._dialect.upsert(conn, table, [row], now, force, keep_next_run)
            if refused:
                raise TaskLockedError(
                    f"{record.key} is locked by a running execution (use force=True)"
                )
            (next_run,) = next_runs.values()
            return next_run

        return self._run(work, write=True)

    def upsert_many(
        self,
        records: Sequence[InstanceRecord],
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> list[InstanceKey]:
        """One multi-row upsert statement (and transaction) per 500 records.

        A key given twice is written once, with its last record, as one upsert after the other
        would leave it.
        """
        check_next_runs(now, (record.next_run for record in records))
        latest = {record.key: written_row(record) for record in records}
        table = self._schema.instances
        refused: set[InstanceKey] = set()
        for chunk in chunks(list(latest.values()), CHUNK):
            # The same lock order in every transaction: concurrent batches do not deadlock.
            rows = sorted(chunk, key=lambda row: (row["task"], row["partition"], row["instance"]))

            def work(conn: Connection, rows: list[dict[str, Any]] = rows) -> set[Any]:
                return self._dialect.upsert(conn, table, rows, now, force, keep_next_run)[0]

            refused.update(InstanceKey(*key) for key in self._run(work, write=True))
        return [record.key for record in records if record.key in refused]

    def delete(self, key: InstanceKey) -> bool:
        return self._rows_written(delete(self._schema.instances).where(*self._where_key(key))) > 0

    def get(self, key: InstanceKey) -> InstanceRecord | None:
        stmt, params = self._single.get, key_params(key)
        row = self._run(lambda conn: conn.execute(stmt, params).first(), write=False, single=True)
        return None if row is None else decode(row)

    def quarantine(self, key: InstanceKey, lease: str | None, reason: str, now: datetime) -> bool:
        check_aware("now", now)
        stmt = self._quarantine[lease is not None]
        return self._rows_written(stmt, quarantine_params(key, lease, reason, now)) > 0

    def list_quarantined(self, task: str | None = None, limit: int = 100) -> list[Quarantined]:
        if limit <= 0:
            return []
        stmt = list_statement(self._schema.instances, task, limit)
        return listed(self._run(lambda conn: conn.execute(stmt).all(), write=False))

    def lease_of(self, key: InstanceKey) -> str | None:
        stmt, params = self._single.lease, key_params(key)
        lease: str | None = self._run(
            lambda conn: conn.execute(stmt, params).scalar(), write=False, single=True
        )
        return lease

    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> list[InstanceRecord]:
        check_limit(limit)
        table = self._schema.instances
        c = table.c
        stmt = select(*readable_columns(table, self._dialect.name))
        stmt = stmt.where(c.task == task, c.partition == partition)
        if after is not None:
            stmt = stmt.where(c.instance > after)
        stmt = stmt.order_by(c.instance).limit(limit)
        rows = self._run(lambda conn: conn.execute(stmt).all(), write=False)
        records = []
        for row in rows:
            with contextlib.suppress(CorruptRecordError):  # left out: see list_quarantined
                records.append(decode(row))
        return records

    def count_instances(self, task: str, partition: int) -> int:
        c = self._schema.instances.c
        stmt = select(func.count()).where(c.task == task, c.partition == partition)
        return int(self._run(lambda conn: conn.execute(stmt).scalar_one(), write=False))

    # --- strikes (celery_pyncette.stores.sql._strikes) -----------------------------------------

    def add_strike(self, strike: Strike) -> None:
        sql_strikes.add(self, strike)

    def remove_strike(self, strike: Strike) -> bool:
        return sql_strikes.remove(self, strike)

    def list_strikes(self) -> list[Strike]:
        return sql_strikes.listed(self)

    def strikes_marker(self) -> str:
        return sql_strikes.marker(self)
