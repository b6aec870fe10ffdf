"""SQL store: URLs, schema, batches and errors on SQLite, PostgreSQL and MariaDB.

The behaviour every store shares is in tests/contract; these tests pin what is SQL-specific. The
helpers at the top are shared with the other ``test_sql_*`` modules.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from celery_pyncette.errors import ConfigurationError, LeaseLostError, StoreError
from celery_pyncette.stores import store_from_url
from celery_pyncette.stores.base import Commit, InstanceKey, InstanceRecord, Strike
from celery_pyncette.stores.sql import SQLStore
from tests.backends import mariadb, postgres, sqlite

SQL_BACKENDS = [sqlite, postgres, mariadb]
SERVER_BACKENDS = [postgres, mariadb]

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def on(backends: list[ModuleType]) -> Any:
    """Parametrise a test's ``backend`` argument over ``backends``."""
    return pytest.mark.parametrize("backend", backends, ids=[b.NAME for b in backends])


def key(name: str, task: str = "t") -> InstanceKey:
    return InstanceKey(task, 0, name)


def record(name: str, next_run: datetime = T0, task: str = "t", **args: Any) -> InstanceRecord:
    return InstanceRecord(key=key(name, task), next_run=next_run, spec={"every": 60}, args=args)


def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@contextmanager
def sql_store(backend: ModuleType) -> Iterator[SQLStore]:
    """A fresh, set-up store of ``backend`` in its own namespace."""
    with backend.make_store(namespace()) as store:
        assert isinstance(store, SQLStore)
        yield store


def engine_of(store: SQLStore) -> Engine:
    """The store's engine in this process (a test hook: the store exposes none)."""
    return store._engine.get()


def seed(store: SQLStore, count: int, next_run: datetime = T0) -> list[str]:
    """Insert ``count`` instances due at ``next_run`` in one statement (faster than upserts)."""
    names = [f"i{n:05d}" for n in range(count)]
    rows = [
        {
            "task": "t",
            "partition": 0,
            "instance": name,
            "spec": {"every": 60},
            "args": {"n": name},
            "next_run": next_run,
            "ready_at": next_run,
        }
        for name in names
    ]
    with engine_of(store).begin() as conn:
        conn.execute(insert(store._schema.instances), rows)
    return names


def stored(store: SQLStore, name: str) -> dict[str, Any]:
    """The raw columns of one instance, read around the store's API."""
    table = store._schema.instances
    with engine_of(store).connect() as conn:
        row = conn.execute(
            table.select().where(table.c.task == "t", table.c.instance == name)
        ).one()
    return dict(row._mapping)


@contextmanager
def admin_engine(backend: ModuleType) -> Iterator[Engine]:
    """An unpooled engine of a server backend, apart from any store."""
    url = backend.URL
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("mysql://", "mysql+pymysql://"),
    ):
        if url.startswith(plain):
            url = driver + url[len(plain) :]
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def statements(store: SQLStore) -> Iterator[list[str]]:
    """Collect the SQL statements the store sends that touch its tables."""
    seen: list[str] = []
    engine = engine_of(store)

    def collect(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if store.namespace in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", collect)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", collect)


# --- URLs and configuration: no I/O ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", "postgresql+psycopg://"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "postgresql+psycopg://"),
        ("mysql://nobody@127.0.0.1:1/none", "mysql+pymysql://"),
        ("mysql+pymysql://nobody@127.0.0.1:1/none", "mysql+pymysql://"),
        ("sqlite:////nonexistent/dir/x.db", "sqlite+pysqlite://"),
    ],
)
def test_a_store_is_built_without_connecting_and_on_the_right_driver(url: str, driver: str) -> None:
    store = store_from_url(url, namespace="app")

    assert isinstance(store, SQLStore)
    assert driver in repr(store)
    store.close()


@pytest.mark.parametrize("bad", ["", "1st", "app-x", "a b", "x;drop", "é", "n" * 42])
def test_an_invalid_namespace_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        SQLStore("sqlite:////tmp/x.db", namespace=bad)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_database_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="memory://"):
        SQLStore(url)


def test_a_password_never_appears_in_errors() -> None:
    store = SQLStore("postgresql://user:s3cret@127.0.0.1:1/none")

    with pytest.raises(StoreError) as caught:
        store.get(key("a"))

    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(store)


# --- schema -------------------------------------------------------------------------------------


@on(SQL_BACKENDS)
def test_setup_creates_the_tables_keys_and_claim_index_and_can_run_again(
    backend: ModuleType,
) -> None:
    with sql_store(backend) as store:
        store.setup()
        store.setup()

        ns = store.namespace
        schema = inspect(engine_of(store))
        assert {f"{ns}_instances", f"{ns}_strikes", f"{ns}_meta"} <= set(schema.get_table_names())
        instances = f"{ns}_instances"
        assert schema.get_pk_constraint(instances)["constrained_columns"] == [
            "task",
            "partition",
            "instance",
        ]
        indexes = {ix["name"]: ix["column_names"] for ix in schema.get_indexes(instances)}
        assert indexes[f"{ns}_instances_ready"] == ["task", "partition", "ready_at"]
        assert indexes[f"{ns}_instances_quarantined"] == ["quarantined_at"]
        assert {c["name"] for c in schema.get_columns(instances)} == {
            "task",
            "partition",
            "instance",
            "spec",
            "args",
            "next_run",
            "ready_at",
            "locked_until",
            "lease",
            "locked_by",
            "last_run_at",
            "last_status",
            "quarantined_at",
            "quarantine_reason",
            "runs",
            "history",
        }


def test_setup_rebuilds_a_postgres_ready_index_made_without_its_predicate() -> None:
    with sql_store(postgres) as store:
        store.upsert(record("a"), T0)
        ready = f"{store.namespace}_instances_ready"
        # Given the ready index as tables made before it was partial have it
        with engine_of(store).begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {ready}")
            conn.exec_driver_sql(
                f"CREATE INDEX {ready} ON {store.namespace}_instances (task, partition, ready_at)"
            )

        store.setup()

        indexes = inspect(engine_of(store)).get_indexes(f"{store.namespace}_instances")
        (index,) = [index for index in indexes if index["name"] == ready]
        assert index["column_names"] == ["task", "partition", "ready_at"]
        assert index["dialect_options"]["postgresql_where"] == "(ready_at IS NOT NULL)"
        assert store.get(key("a")) is not None


@on(SQL_BACKENDS)
def test_skip_table_create_without_the_tables_raises_store_error_naming_them(
    backend: ModuleType,
) -> None:
    with sql_store(backend) as existing:
        ns = namespace()
        store = SQLStore(existing.url, namespace=ns, skip_table_create=True)
        try:
            with pytest.raises(StoreError, match=f"{ns}_instances"):
                store.setup()
            with pytest.raises(StoreError, match=f"{ns}_instances.*migrate"):
                store.get(key("a"))
        finally:
            store.close()


@on(SQL_BACKENDS)
def test_skip_table_create_with_the_tables_only_checks_them(backend: ModuleType) -> None:
    with sql_store(backend) as existing:
        existing.upsert(record("a"), T0)
        store = SQLStore(existing.url, namespace=existing.namespace, skip_table_create=True)
        try:
            store.setup()

            assert store.get(key("a")) is not None
        finally:
            store.close()


@on(SQL_BACKENDS)
def test_ready_at_is_the_later_of_next_run_and_the_lease(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        store.upsert(record("a"), T0)
        assert stored(store, "a")["ready_at"] == T0

        (got,) = store.claim_due("t", 0, T0, 1, LEASE, "b1")
        assert stored(store, "a")["ready_at"] == T0 + LEASE

        store.extend_lease(got.key, got.lease or "", T0 + 3 * LEASE)
        assert stored(store, "a")["ready_at"] == T0 + 3 * LEASE

        store.unlock(got.key, got.lease or "")
        assert stored(store, "a")["ready_at"] == T0

        (again,) = store.claim_due("t", 0, T0, 1, LEASE, "b1")
        store.commit(again.key, again.lease or "", T0 + timedelta(hours=1), T0)
        row = stored(store, "a")
        assert (row["ready_at"], row["locked_until"], row["locked_by"]) == (
            T0 + timedelta(hours=1),
            None,
            None,
        )


@on(SQL_BACKENDS)
def test_a_heartbeat_that_changes_nothing_still_holds_the_lease(backend: ModuleType) -> None:
    # MySQL reports changed rows unless told to report matched ones: a no-op UPDATE is not a
    # lost lease.
    with sql_store(backend) as store:
        store.upsert(record("a"), T0)
        (got,) = store.claim_due("t", 0, T0, 1, LEASE, "b1")

        store.extend_lease(got.key, got.lease or "", T0 + LEASE)
        store.extend_lease(got.key, got.lease or "", T0 + LEASE)

        assert store.unlock_many([(got.key, got.lease or "")]) == []


@on(SQL_BACKENDS)
def test_times_come_back_as_aware_utc_whatever_zone_goes_in(backend: ModuleType) -> None:
    plus_two = timezone(timedelta(hours=2))
    with sql_store(backend) as store:
        store.upsert(record("a", T0.astimezone(plus_two)), T0)

        state = store.get(key("a"))

        assert state is not None
        assert state.next_run == T0
        assert state.next_run.utcoffset() == timedelta(0)


@on(SQL_BACKENDS)
def test_names_list_in_code_point_order_on_every_backend(backend: ModuleType) -> None:
    names = ["b", "B", "a", "Z", "é", "e", "ä", "z", "😀", "~", "_", "1"]
    with sql_store(backend) as store:
        for name in names:
            store.upsert(record(name), T0)

        listed = [r.key.instance for r in store.list_instances("t", 0, 100)]

        assert listed == sorted(names)
        assert [r.key.instance for r in store.list_instances("t", 0, 100, after="a")] == [
            n for n in sorted(names) if n > "a"
        ]


@on(SQL_BACKENDS)
def test_the_longest_names_fit_the_key_and_longer_ones_are_refused(backend: ModuleType) -> None:
    longest = "é" * 512  # 1024 bytes
    longest_task = "\U0001f600" * 200  # 200 characters (the longest task name), 800 bytes
    with sql_store(backend) as store:
        store.upsert(record(longest, task=longest_task), T0)
        assert store.get(key(longest, longest_task)) is not None
        (claimed,) = store.claim_due(longest_task, 0, T0, 10, LEASE, "b1")
        assert claimed.key == key(longest, longest_task)

        with pytest.raises(ValueError, match="1024"):
            store.upsert(record(longest + "x"), T0)
        with pytest.raises(ValueError, match="800"):
            store.upsert(record("a", task=longest_task + "x"), T0)


def test_sqlite_runs_in_wal_mode_so_processes_share_the_file() -> None:
    with sql_store(sqlite) as store:
        store.upsert(record("a"), T0)
        path = Path(store.url.removeprefix("sqlite:///"))

        with sqlite3.connect(path) as raw:
            (mode,) = raw.execute("PRAGMA journal_mode").fetchone()

        assert mode == "wal"


@on(SQL_BACKENDS)
def test_setups_racing_on_a_new_namespace_all_succeed(backend: ModuleType) -> None:
    with sql_store(backend) as existing:
        ns = namespace()
        stores = [SQLStore(existing.url, namespace=ns) for _ in range(4)]
        barrier = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def set_up(store: SQLStore) -> None:
            try:
                barrier.wait(10)
                store.setup()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=set_up, args=(store,)) for store in stores]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            stores[0].upsert(record("a"), T0)

            assert errors == []
            assert stores[1].get(key("a")) is not None
        finally:
            for store in stores:
                store.close()
            if backend is not sqlite:
                backend.drop_tables(ns)


def test_sqlite_writes_take_the_write_lock_at_begin_and_single_reads_need_no_begin() -> None:
    with sql_store(sqlite) as store:
        store.upsert(record("a"), T0)
        sent: list[str] = []

        def collect(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(statement.split()[0] + (" IMMEDIATE" if "IMMEDIATE" in statement else ""))

        event.listen(engine_of(store), "before_cursor_execute", collect)
        store.claim_due("t", 0, T0, 10, LEASE, "b1")
        claim_sent, sent[:] = sent[:], []
        store.get(key("a"))
        store.lease_of(key("a"))
        single_reads, sent[:] = sent[:], []
        store.list_instances("t", 0, 10)

        assert claim_sent == ["BEGIN IMMEDIATE", "SELECT", "UPDATE"]
        # one statement is a read transaction of its own
        assert single_reads == ["SELECT", "SELECT"]
        assert sent == ["BEGIN", "SELECT"]


def test_postgres_runs_single_statements_without_a_transaction_and_batches_within_one() -> None:
    with sql_store(postgres) as store:
        store.upsert(record("a"), T0)
        seen: list[tuple[str, bool]] = []

        def collect(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if store.namespace in statement:
                seen.append((statement.split()[0], conn.connection.dbapi_connection.autocommit))

        event.listen(engine_of(store), "before_cursor_execute", collect)
        (claimed,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")
        store.get(key("a"))
        store.extend_lease(key("a"), claimed.lease or "", T0 + 2 * LEASE)
        store.commit(key("a"), claimed.lease or "", T0 + timedelta(minutes=1), T0)
        single, seen[:] = seen[:], []
        store.upsert_many([record("b"), record("c")], T0)
        store.commit_many([Commit(key("b"), "stale", None)], T0)

        # one self-contained statement each: no BEGIN / COMMIT round trips around them
        assert single == [("WITH", True), ("SELECT", True), ("UPDATE", True), ("UPDATE", True)]
        # checks followed by writes keep their transaction
        assert seen
        assert all(not autocommit for _, autocommit in seen)


def test_a_naive_datetime_is_the_callers_value_error() -> None:
    with sql_store(sqlite) as store, pytest.raises(ValueError, match="timezone-aware"):
        store.upsert(record("a", datetime(2030, 1, 1)), T0)


# --- batches ------------------------------------------------------------------------------------


@on(SQL_BACKENDS)
def test_commit_many_locks_checks_and_writes_a_batch_in_a_few_statements(
    backend: ModuleType,
) -> None:
    with sql_store(backend) as store:
        seed(store, 120)
        claimed = store.claim_due("t", 0, T0, 120, LEASE, "b1")
        commits = [
            Commit(r.key, r.lease or "", T0 + timedelta(minutes=1 + n % 2))
            for n, r in enumerate(claimed[:100])
        ]
        commits += [Commit(r.key, r.lease or "", None) for r in claimed[100:110]]
        commits += [Commit(r.key, "stale", T0 + timedelta(minutes=1)) for r in claimed[110:]]

        with statements(store) as sent:
            lost = store.commit_many(commits, T0)

        assert lost == [r.key for r in claimed[110:]]
        # one SELECT ... FOR UPDATE, one UPDATE per distinct next run, one DELETE
        assert len(sent) == 4
        assert store.count_instances("t", 0) == 110
        assert stored(store, claimed[110].key.instance)["lease"] == claimed[110].lease
        # a minute later: the 50 committed to +1 min, and the 10 stale ones whose lease expired
        assert len(store.claim_due("t", 0, T0 + timedelta(minutes=1), 200, LEASE, "b2")) == 60


@on(SQL_BACKENDS)
def test_a_key_named_twice_in_one_batch_is_committed_once(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        store.upsert(record("a"), T0)
        (got,) = store.claim_due("t", 0, T0, 1, LEASE, "b1")
        twice = Commit(got.key, got.lease or "", T0 + timedelta(minutes=1))

        assert store.commit_many([twice, twice], T0) == [got.key]
        with pytest.raises(LeaseLostError):
            store.commit(got.key, got.lease or "", T0, T0)


@on(SQL_BACKENDS)
def test_unlock_many_releases_a_batch_in_a_few_statements(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        seed(store, 50)
        claimed = store.claim_due("t", 0, T0, 50, LEASE, "b1")
        items = [(r.key, r.lease or "") for r in claimed[:40]]
        items += [(r.key, "stale") for r in claimed[40:]]

        with statements(store) as sent:
            lost = store.unlock_many(items)

        assert lost == [r.key for r in claimed[40:]]
        assert len(sent) == 2
        again = store.claim_due("t", 0, T0, 100, LEASE, "b2")
        assert sorted(r.key.instance for r in again) == sorted(r.key.instance for r in claimed[:40])


@on(SQL_BACKENDS)
def test_upsert_many_writes_500_records_per_statement(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        records = [record(f"r{n:04d}", T0 + timedelta(seconds=n), n=n) for n in range(1200)]

        with statements(store) as sent:
            assert store.upsert_many(records, T0) == []

        assert sum(1 for sql in sent if sql.lstrip().upper().startswith("INSERT")) == 3
        assert store.count_instances("t", 0) == 1200
        state = store.get(key("r0777"))
        assert state is not None
        assert (state.next_run, state.args) == (T0 + timedelta(seconds=777), {"n": 777})


@on(SQL_BACKENDS)
def test_upsert_many_with_a_key_twice_acts_as_two_upserts(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        store.upsert(record("locked"), T0)
        store.claim_due("t", 0, T0, 1, LEASE, "b1")

        refused = store.upsert_many(
            [record("a", v=1), record("locked"), record("a", v=2), record("locked")], T0
        )

        assert refused == [key("locked"), key("locked")]
        state = store.get(key("a"))
        assert state is not None
        assert state.args == {"v": 2}


@on(SQL_BACKENDS)
def test_count_instances_is_one_query(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        seed(store, 1500)

        with statements(store) as sent:
            assert store.count_instances("t", 0) == 1500

        assert len(sent) == 1
        assert store.count_instances("other", 0) == 0


# --- strikes ------------------------------------------------------------------------------------


@on(SQL_BACKENDS)
def test_strikes_and_their_marker_are_shared_between_clients(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        other = SQLStore(store.url, namespace=store.namespace)
        try:
            before = other.strikes_marker()
            long_value = "v" * 10_000
            store.add_strike(Strike("t", "user", "==", long_value))

            assert other.strikes_marker() != before
            assert other.list_strikes() == [Strike("t", "user", "==", long_value)]
            assert other.remove_strike(Strike("t", "user", "==", long_value)) is True
            assert store.list_strikes() == []
        finally:
            other.close()


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/test",
        "mysql://root@127.0.0.1:1/test",
    ],
)
def test_an_unreachable_server_is_a_store_error_caused_by_the_driver(url: str) -> None:
    store = SQLStore(url)
    try:
        with pytest.raises(StoreError) as caught:
            store.claim_due("t", 0, T0, 10, LEASE, "b1")

        assert isinstance(caught.value.__cause__, OperationalError)
    finally:
        store.close()


def test_an_unopenable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")

    with pytest.raises(StoreError, match="unable to open"):
        store.setup()
