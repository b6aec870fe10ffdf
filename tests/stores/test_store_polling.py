"""Batched polling, store by store: what one poll costs, and Redis's clock and bulk upserts.

``due_partitions`` answers in one round trip (one statement, one pipeline, or one concurrent burst
of DynamoDB queries), and its SQL probes read the ``(task, partition, ready_at)`` index only up to
their first due row. What every store answers (exactly the groups with a claimable instance, the
server's clock or ``None``) is the contract's: ``tests/contract/test_polling_contract.py``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
import redis
from redis.connection import AbstractConnection
from sqlalchemy import event, insert

from celery_pyncette.errors import LeaseLostError
from celery_pyncette.stores.base import Commit, InstanceKey, InstanceRecord, Store
from celery_pyncette.stores.dynamodb import DynamoDBStore
from celery_pyncette.stores.redis import RedisStore
from celery_pyncette.stores.sql import SQLStore
from tests.backends import dynamodb, mariadb, postgres, redis_cluster, sqlite
from tests.backends import redis as standalone
from tests.stores.test_sql_store import engine_of, statements
from tests.support.servers.local_redis import private_server

pytestmark = pytest.mark.timeout(90)

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
HOUR = timedelta(hours=1)

SQL_BACKENDS = [sqlite, postgres, mariadb]


def on(backends: list[ModuleType]) -> Any:
    return pytest.mark.parametrize("backend", backends, ids=[b.NAME for b in backends])


def record(name: str, partition: int, next_run: datetime = T0, task: str = "t") -> InstanceRecord:
    return InstanceRecord(InstanceKey(task, partition, name), next_run, {"interval": 60}, {})


@contextmanager
def fresh(backend: ModuleType) -> Iterator[Store]:
    with backend.make_store(f"t{uuid.uuid4().hex[:10]}") as store:
        yield store


# --- one round trip -------------------------------------------------------------------------------


@on(SQL_BACKENDS)
def test_an_sql_poll_of_32_partitions_is_one_statement(backend: ModuleType) -> None:
    with fresh(backend) as store:
        assert isinstance(store, SQLStore)
        store.upsert_many([record(f"i{p}", p) for p in range(0, 32, 3)], T0)
        groups = [("t", p) for p in range(32)]

        with statements(store) as sent:
            found = store.due_partitions(groups, T0)

        assert found == {("t", p) for p in range(0, 32, 3)}
        assert len(sent) == 1, sent
        with statements(store) as sent:
            store.due_partitions([("t", p) for p in range(1200)], T0)
        assert len(sent) == 3, "one statement per 500 groups"


def seed_rows(store: SQLStore, partition: int, count: int, ready_at: datetime, name: str) -> None:
    rows = [
        {
            "task": "t",
            "partition": partition,
            "instance": f"{name}-{n:05d}",
            "spec": {},
            "args": {},
            "next_run": ready_at,
            "ready_at": ready_at,
        }
        for n in range(count)
    ]
    with engine_of(store).begin() as conn:
        conn.execute(insert(store._schema.instances), rows)


@contextmanager
def sent_by(store: SQLStore) -> Iterator[list[tuple[str, Any]]]:
    """The statements on the store's tables, with their parameters, sent while inside."""
    sent: list[tuple[str, Any]] = []
    engine = engine_of(store)

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if store.namespace in statement:
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def scans(plan: Any) -> list[dict[str, Any]]:
    """Every node of a JSON plan that reads a table (PostgreSQL and MariaDB formats)."""
    found: list[dict[str, Any]] = []
    if isinstance(plan, dict):
        if "Relation Name" in plan or "table_name" in plan:
            found.append(plan)
        for value in plan.values():
            found.extend(scans(value))
    elif isinstance(plan, list):
        for value in plan:
            found.extend(scans(value))
    return found


def test_a_postgres_claim_reads_only_the_rows_it_takes_even_before_analyze() -> None:
    # Given a freshly filled partition of 20,000 due rows the planner has no statistics for
    with fresh(postgres) as store:
        assert isinstance(store, SQLStore)
        seed_rows(store, 0, 20_000, T0 - HOUR, "due")
        engine = engine_of(store)
        with sent_by(store) as sent:
            claimed = store.claim_due("t", 0, T0, 100, LEASE, "b1")
        ((statement, parameters),) = [(s, p) for s, p in sent if s.lstrip().startswith("WITH")]

        # When the server runs that claim again with its plan measured (and rolls it back)
        with engine.connect() as conn, conn.begin() as transaction:
            measured = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement
            plan = conn.exec_driver_sql(measured, parameters).scalar_one()
            transaction.rollback()

    # Then no node of the plan reads more rows than one claim takes
    assert len(claimed) == 100
    reads = scans(plan)
    assert reads
    for read in reads:
        assert read["Node Type"] != "Seq Scan", read
        assert read["Actual Rows"] * read["Actual Loops"] <= 100, read


def test_postgres_key_lookups_read_one_row_by_the_primary_key_even_before_analyze() -> None:
    # Given a freshly filled partition of 20,000 rows the planner has no statistics for (with
    # none, it rates the ready index and the primary key alike for a lookup by key)
    with fresh(postgres) as store:
        assert isinstance(store, SQLStore)
        seed_rows(store, 0, 20_000, T0 - HOUR, "row")
        key = InstanceKey("t", 0, "row-12345")
        engine = engine_of(store)

        # When the calls by key run: a read, the worker's lease check, commits, an extension,
        # an unlock
        with sent_by(store) as sent:
            assert store.get(key) is not None
            assert store.lease_of(key) is None
            for call in (
                lambda: store.commit(key, "not-the-lease", T0 + HOUR, T0),
                lambda: store.commit(key, "not-the-lease", None, T0),
                lambda: store.extend_lease(key, "not-the-lease", T0 + HOUR),
                lambda: store.unlock(key, "not-the-lease"),
            ):
                with pytest.raises(LeaseLostError):
                    call()
        assert len(sent) == 6

        plans = []
        for statement, parameters in sent:
            with engine.connect() as conn, conn.begin() as transaction:
                measured = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement
                plans.append(conn.exec_driver_sql(measured, parameters).scalar_one())
                transaction.rollback()

    # Then each reads one entry of the primary key and one row
    for (statement, _), plan in zip(sent, plans, strict=True):
        (read,) = [node for node in scans(plan) if node["Node Type"] != "ModifyTable"]
        assert read["Index Name"] == f"{store.namespace}_instances_pkey", statement
        assert read["Actual Rows"] + read.get("Rows Removed by Filter", 0) <= 1, statement


@on([postgres, mariadb])
def test_each_sql_probe_is_one_index_lookup_whatever_the_data(backend: ModuleType) -> None:
    # Given partitions of 3,000 due rows, of 3,000 later rows, of both, and an empty one
    with fresh(backend) as store:
        assert isinstance(store, SQLStore)
        seed_rows(store, 1, 3000, T0 + HOUR, "later")
        seed_rows(store, 0, 3000, T0 - HOUR, "due")
        seed_rows(store, 2, 3000, T0 + HOUR, "later")
        seed_rows(store, 2, 1, T0 - HOUR, "due")
        engine = engine_of(store)
        with engine.begin() as conn:
            if backend is postgres:
                conn.exec_driver_sql(f"ANALYZE {store.namespace}_instances")
            else:
                conn.exec_driver_sql(f"ANALYZE TABLE {store.namespace}_instances").all()
        with sent_by(store) as sent:
            found = store.due_partitions([("t", 0), ("t", 1), ("t", 2), ("t", 3)], T0)
        ((statement, parameters),) = sent

        # When the server runs that statement with its plan measured
        measure = "ANALYZE FORMAT=JSON "
        if backend is postgres:
            measure = "EXPLAIN (ANALYZE, FORMAT JSON) "
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(measure + statement, parameters).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan

    # Then each probe reads one entry of the ready index (or none), and no row of the table
    assert found == {("t", 0), ("t", 2)}
    reads = scans(plan)
    if backend is postgres:
        # one lateral index probe, run once per group
        (read,) = reads
        assert read["Node Type"] == "Index Only Scan", read
        assert read["Index Name"] == f"{store.namespace}_instances_ready"
        assert read["Actual Loops"] == 4
        assert read["Actual Rows"] <= 1
    else:
        assert len(reads) == 4
        for read in reads:
            assert read["key"] == f"{store.namespace}_instances_ready", read
            assert read["using_index"] is True, read
            assert read["r_rows"] <= 1, read


class Sends:
    """Counts the writes redis-py makes to its sockets from this thread: one per command, one per
    pipeline (a thread another test left behind in this worker process is not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = AbstractConnection.send_packed_command
        thread = threading.get_ident()

        def counted(connection: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == thread:
                self.count += 1
            return original(connection, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)


def test_a_redis_poll_of_32_partitions_is_one_read_only_script_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with private_server() as server:
        store = RedisStore(server.url, namespace="app")
        admin = redis.Redis(port=server.port)
        try:
            store.setup()
            store.upsert_many([record(f"i{p}", p) for p in range(0, 32, 3)], T0)
            store.upsert_many([record(f"l{n}", n % 32, T0 + HOUR) for n in range(500)], T0)
            admin.config_resetstat()
            sends = Sends(monkeypatch)

            found = store.due_partitions([("t", p) for p in range(32)], T0)

            assert found == {("t", p) for p in range(0, 32, 3)}
            assert sends.count == 1
            stats = admin.info("commandstats")
            calls = {name: entry["calls"] for name, entry in stats.items()}
            # the script's 32 reads are counted too (one O(log N) index read per partition)
            assert calls == {
                "cmdstat_config|resetstat": 1,
                "cmdstat_evalsha": 1,
                "cmdstat_zrangebyscore": 32,
            }
            sends.count = 0
            store.due_partitions([("t", p) for p in range(1200)], T0)
            assert sends.count == 1, "three script calls in one pipeline"
        finally:
            store.close()
            admin.close()


def test_a_redis_cluster_poll_is_one_round_trip_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh(redis_cluster) as store:
        store.upsert_many([record(f"i{p}", p) for p in range(0, 32, 3)], T0)
        store.due_partitions([("t", 0)], T0)  # the client has learnt the slots
        sends = Sends(monkeypatch)

        found = store.due_partitions([("t", p) for p in range(32)], T0)
        sent = sends.count

    assert found == {("t", p) for p in range(0, 32, 3)}
    assert 1 <= sent <= 3, "three masters"


def test_a_dynamodb_poll_queries_each_partition_once_and_concurrently() -> None:
    with fresh(dynamodb) as store:
        assert isinstance(store, DynamoDBStore)
        store.upsert_many([record(f"i{p}", p) for p in range(0, 32, 3)], T0)
        store.upsert_many([record(f"l{p}", p, T0 + HOUR) for p in range(32)], T0)
        queries: list[dict[str, Any]] = []
        in_flight, peak = [0], [0]
        lock = threading.Lock()

        def before(params: dict[str, Any], **_: Any) -> None:
            with lock:
                queries.append(params)
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])

        def after(**_: Any) -> None:
            with lock:
                in_flight[0] -= 1

        events = store._connect().meta.events
        events.register("provide-client-params.dynamodb.Query", before)
        events.register("after-call.dynamodb.Query", after)

        found = store.due_partitions([("t", p) for p in range(32)], T0)

    assert found == {("t", p) for p in range(0, 32, 3)}
    assert len(queries) == 32
    assert all(q["Limit"] == 1 and q["IndexName"] == "ready_at" for q in queries)
    assert peak[0] > 1, "the queries ran one after the other"


# --- the store's clock ----------------------------------------------------------------------------


def test_redis_server_time_is_the_servers_time_command() -> None:
    with private_server() as server:
        store = RedisStore(server.url, namespace="app")
        admin = redis.Redis(port=server.port)
        try:
            admin.config_resetstat()
            seconds, micros = admin.time()
            first = datetime.fromtimestamp(seconds, timezone.utc) + timedelta(microseconds=micros)
            reading = store.server_time()
            seconds, micros = admin.time()
            last = datetime.fromtimestamp(seconds, timezone.utc) + timedelta(microseconds=micros)

            assert reading is not None
            assert first <= reading <= last
            assert admin.info("commandstats")["cmdstat_time"]["calls"] == 3
        finally:
            store.close()
            admin.close()


# --- bulk upserts on Redis ------------------------------------------------------------------------


def test_a_redis_bulk_upsert_is_one_round_trip_and_reports_the_locked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with fresh(standalone) as store:
        store.upsert(record("locked", 3), T0)
        (claimed,) = store.claim_due("t", 3, T0, 1, LEASE, "b1")
        batch = [record(f"i{n:04d}", n % 8, T0 + HOUR) for n in range(1200)]
        batch += [record("locked", 3, T0 + HOUR), record("i0001", 1, T0 + HOUR * 2)]
        sends = Sends(monkeypatch)

        refused = store.upsert_many(batch, T0)

        assert sends.count == 1
        assert refused == [claimed.key]
        assert sum(store.count_instances("t", p) for p in range(8)) == 1201
        kept = store.get(claimed.key)
        assert kept is not None
        assert (kept.lease, kept.next_run) == (claimed.lease, T0)
        repeated = store.get(InstanceKey("t", 1, "i0001"))
        assert repeated is not None
        assert repeated.next_run == T0 + HOUR * 2, "the last one wins"
        assert store.upsert_many([record("locked", 3, T0 + HOUR)], T0, force=True) == []
        assert store.commit_many([Commit(claimed.key, claimed.lease or "", T0)], T0) == [
            claimed.key
        ]


def test_a_redis_bulk_upsert_refuses_arguments_that_are_not_json_before_writing() -> None:
    with fresh(standalone) as store:
        bad = InstanceRecord(InstanceKey("t", 1, "bad"), T0, {"interval": 60}, {"x": object()})

        with pytest.raises(ValueError, match="JSON"):
            store.upsert_many([record("good", 0), bad], T0)

        assert store.get(InstanceKey("t", 0, "good")) is None
