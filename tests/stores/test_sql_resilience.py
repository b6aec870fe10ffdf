"""SQL store as a daemon needs it: lost connections cost at most one call, forks get new pools."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import event, text

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import Commit, Strike
from celery_pyncette.stores.sql import SQLStore
from celery_pyncette.stores.sql import _engine as sql_engine
from tests.backends import postgres
from tests.stores.test_sql_store import (
    SERVER_BACKENDS,
    SQL_BACKENDS,
    T0,
    admin_engine,
    engine_of,
    key,
    on,
    record,
    seed,
    sql_store,
)

LEASE = timedelta(seconds=30)
LATER = T0 + timedelta(days=2)


class Killer:
    """Ends every server session of one store, as a failover or an idle timeout would."""

    def __init__(self, backend: ModuleType, store: SQLStore) -> None:
        self.backend = backend
        self.store = store
        self.mysql_ids: set[int] = set()
        if backend is not postgres:
            # MariaDB has no application_name: note each session id as the pool opens it.
            event.listen(engine_of(store), "connect", self._note_id)

    def _note_id(self, dbapi_connection: Any, record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            self.mysql_ids.add(cursor.fetchone()[0])

    def kill(self) -> int:
        """Kill the store's sessions; return how many were killed."""
        with admin_engine(self.backend) as engine, engine.connect() as conn:
            if self.backend is postgres:
                return len(
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                            "AND application_name = :name"
                        ),
                        {"name": f"celery-pyncette:{self.store.namespace}"},
                    ).all()
                )
            alive = {
                row[0]
                for row in conn.execute(text("SELECT ID FROM information_schema.PROCESSLIST"))
            }
            killed = 0
            for session in sorted(self.mysql_ids & alive):
                conn.exec_driver_sql(f"KILL {int(session)}")
                killed += 1
            return killed


@contextmanager
def killable_store(backend: ModuleType) -> Iterator[tuple[SQLStore, Killer]]:
    """A store (not yet connected) and its killer; its tables are dropped afterwards."""
    backend.require()
    namespace = f"t{uuid.uuid4().hex[:10]}"
    store = SQLStore(backend.URL, namespace=namespace)
    try:
        killer = Killer(backend, store)
        store.setup()
        yield store, killer
    finally:
        store.close()
        backend.drop_tables(namespace)


@on(SERVER_BACKENDS)
def test_after_its_sessions_are_killed_at_most_one_call_fails_then_the_store_works(
    backend: ModuleType,
) -> None:
    with killable_store(backend) as (store, killer):
        names = seed(store, 20)

        def claim_and_commit() -> None:
            for got in store.claim_due("t", 0, T0, 2, LEASE, "b1"):
                store.commit(got.key, got.lease or "", T0 + timedelta(days=1), T0)

        calls: dict[str, Callable[[], object]] = {
            "get": lambda: store.get(key(names[0])),
            "list": lambda: store.list_instances("t", 0, 5),
            "claim and commit": claim_and_commit,
            "upsert": lambda: store.upsert(record("extra"), T0),
            "strike": lambda: store.add_strike(Strike("t")),
            "marker": store.strikes_marker,
        }
        failed: list[str] = []
        for name, call in calls.items():
            call()
            assert killer.kill() >= 1, name

            try:
                call()
            except StoreError:
                failed.append(name)
            call()

        assert store.count_instances("t", 0) == 21
        assert len(store.claim_due("t", 0, LATER, 100, LEASE, "b2")) == 21


@on(SERVER_BACKENDS)
def test_a_connection_idle_past_the_threshold_is_pinged_so_a_killed_session_costs_no_call(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every pooled connection counts as idle for long enough to be pinged at checkout
    monkeypatch.setattr(sql_engine, "PING_AFTER_IDLE", 0.0)
    with killable_store(backend) as (store, killer):
        names = seed(store, 4)
        calls: dict[str, Callable[[], object]] = {
            "get": lambda: store.get(key(names[0])),
            "upsert": lambda: store.upsert(record("extra"), T0),
            "strike": lambda: store.add_strike(Strike("t")),
            "claim": lambda: store.claim_due("t", 0, T0, 1, LEASE, "b1"),
        }
        for name, call in calls.items():
            call()
            assert killer.kill() >= 1, name

            call()  # the ping finds the dead session and the pool opens a new one: no error

        assert store.count_instances("t", 0) == 5


@on(SQL_BACKENDS)
def test_a_connection_in_steady_use_is_not_pinged_one_idle_past_the_threshold_is(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sql_store(backend) as store:
        store.upsert(record("a"), T0)
        dialect = engine_of(store).dialect
        pings: list[object] = []
        ping = dialect.do_ping

        def counted(dbapi_connection: Any) -> bool:
            pings.append(dbapi_connection)
            return ping(dbapi_connection)

        monkeypatch.setattr(dialect, "do_ping", counted)
        for _ in range(20):
            assert store.get(key("a")) is not None
        assert pings == []

        monkeypatch.setattr(sql_engine, "PING_AFTER_IDLE", 0.0)
        assert store.get(key("a")) is not None
        assert len(pings) == 1


@on(SERVER_BACKENDS)
def test_sessions_killed_under_traffic_cost_errors_not_instances(backend: ModuleType) -> None:
    with killable_store(backend) as (store, killer):
        seed(store, 40)
        stop = threading.Event()
        outcomes = {"ok": 0, "store_error": 0}
        unexpected: list[BaseException] = []

        def traffic() -> None:
            while not stop.is_set():
                try:
                    batch = store.claim_due("t", 0, T0, 5, LEASE, "b1")
                    store.commit_many([Commit(r.key, r.lease or "", T0) for r in batch], T0)
                    outcomes["ok"] += 1
                except StoreError:
                    outcomes["store_error"] += 1
                except BaseException as exc:  # reported below
                    unexpected.append(exc)
                    return

        worker = threading.Thread(target=traffic)
        worker.start()
        kills = 0
        try:
            for _ in range(5):
                time.sleep(0.15)
                kills += killer.kill()
            time.sleep(0.15)
        finally:
            stop.set()
            worker.join(30)

        assert unexpected == []
        assert kills >= 5
        assert outcomes["ok"] > 0
        assert outcomes["store_error"] <= kills
        # Whatever a kill interrupted, every instance is still there, and claimable once any
        # lease taken by an interrupted claim has expired.
        assert store.count_instances("t", 0) == 40
        assert len(store.claim_due("t", 0, T0 + 2 * LEASE, 100, LEASE, "b2")) == 40


def _use_in_child(store: SQLStore, out: Any) -> None:
    try:
        store.after_fork()
        store.upsert(record("from-child"), T0)
        assert store.get(key("a")) is not None
        out.put(("ok", _session_id(store)))
    except BaseException as exc:  # reported to the parent
        out.put((repr(exc), None))


def _session_id(store: SQLStore) -> Any:
    """The server's id of the session the store's pool hands out (None on SQLite)."""
    with engine_of(store).connect() as conn:
        name = conn.dialect.name
        if name == "postgresql":
            return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        if name == "mysql":
            return conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        return None


@on(SQL_BACKENDS)
def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_alone(
    backend: ModuleType,
) -> None:
    with sql_store(backend) as store:
        store.upsert(record("a"), T0)
        parent_session = _session_id(store)
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_use_in_child, args=(store, out))
        with warnings.catch_warnings():
            # Forking is the point here (Celery's prefork pool does it); Python 3.12+ warns when
            # the forking process runs threads, as a pytest-xdist worker does.
            warnings.filterwarnings("ignore", r".*use of fork\(\) may lead", DeprecationWarning)
            child.start()
        try:
            outcome, child_session = out.get(timeout=30)
        finally:
            child.join(30)

        assert outcome == "ok"
        assert child.exitcode == 0
        if parent_session is not None:
            assert child_session != parent_session
        # The parent's pooled connection was neither used nor closed by the child.
        assert _session_id(store) == parent_session
        assert store.get(key("from-child")) is not None
        assert len(store.claim_due("t", 0, T0, 10, LEASE, "b1")) == 2
