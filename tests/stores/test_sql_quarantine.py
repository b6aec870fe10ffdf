"""SQL store: the quarantine marker columns (and the strike reason), and tables made before they
existed.

The contract (tests/contract/test_quarantine_contract.py) covers what a quarantine does; these
tests pin how the SQL store keeps it: two nullable columns, which ``setup()`` adds to a table made
by the previous schema (idempotently), and which ``skip_table_create`` checks for. The strikes
table of that schema had no ``reason`` column: ``setup()`` adds it, and its strikes still decode.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
from sqlalchemy import Column, Index, MetaData, Table, insert, inspect, select, text

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import Quarantined, Strike, strike_id
from celery_pyncette.stores.sql import SQLStore
from celery_pyncette.stores.sql._quarantine import OUT_OF_INDEX
from celery_pyncette.stores.sql._schema import build_schema
from tests.stores.test_sql_store import (
    LEASE,
    SQL_BACKENDS,
    T0,
    engine_of,
    key,
    namespace,
    on,
    record,
    sql_store,
)

NEW_COLUMNS = ("quarantined_at", "quarantine_reason")
#: The strike of the previous schema's strikes table (written without a reason).
OLD_STRIKE = Strike("t", "user", "==", "bill")


def create_previous_schema(store: SQLStore, ns: str) -> None:
    """The tables of ``ns`` as the previous version made them: no quarantine columns or index, no
    strike reason column; one strike stored."""
    current = build_schema(ns)
    previous = MetaData()
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
        for c in current.instances.columns
        if c.name not in NEW_COLUMNS
    ]
    Table(
        current.instances.name,
        previous,
        *columns,
        Index(
            f"{ns}_instances_ready",
            "task",
            "partition",
            "ready_at",
            postgresql_where=text("ready_at IS NOT NULL"),
        ),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    Table(
        current.strikes.name,
        previous,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in current.strikes.columns
            if c.name != "reason"
        ),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    current.meta.to_metadata(previous)
    with engine_of(store).begin() as conn:
        previous.create_all(conn)
        conn.execute(
            insert(current.instances),
            [
                {
                    "task": "t",
                    "partition": 0,
                    "instance": name,
                    "spec": {"every": 60},
                    "args": {},
                    "next_run": T0,
                    "ready_at": T0,
                }
                for name in ("a", "b")
            ],
        )
        conn.execute(insert(current.meta).values(name="strikes", value=1))
        ident = strike_id(OLD_STRIKE)
        digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()
        conn.execute(insert(previous.tables[current.strikes.name]).values(id=digest, strike=ident))


@contextmanager
def previous_tables(backend: ModuleType) -> Iterator[tuple[SQLStore, str]]:
    """A store on a fresh namespace whose tables the previous version made (dropped after)."""
    with sql_store(backend) as existing:
        ns = namespace()
        create_previous_schema(existing, ns)
        try:
            yield existing, ns
        finally:
            if hasattr(backend, "drop_tables"):
                backend.drop_tables(ns)


@on(SQL_BACKENDS)
def test_setup_adds_the_quarantine_columns_to_tables_of_the_previous_schema(
    backend: ModuleType,
) -> None:
    with previous_tables(backend) as (existing, ns):
        store = SQLStore(existing.url, namespace=ns)
        try:
            store.setup()
            store.setup()  # idempotent

            schema = inspect(engine_of(store))
            columns = {c["name"] for c in schema.get_columns(f"{ns}_instances")}
            assert set(NEW_COLUMNS) <= columns
            indexes = {i["name"] for i in schema.get_indexes(f"{ns}_instances")}
            assert f"{ns}_instances_quarantined" in indexes
            assert "reason" in {c["name"] for c in schema.get_columns(f"{ns}_strikes")}
            # the old strike decodes without a reason, and a reason can be given to it now
            assert store.list_strikes() == [OLD_STRIKE]
            store.add_strike(Strike("t", "user", "==", "bill", reason="incident 4711"))
            assert [s.reason for s in store.list_strikes()] == ["incident 4711"]
            # the rows are intact, and quarantine works on them
            kept = store.get(key("a"))
            assert kept is not None
            assert kept.spec == {"every": 60}
            assert store.quarantine(key("a"), None, "bad", T0) is True
            assert store.list_quarantined() == [Quarantined(key("a"), "bad", T0)]
            assert [r.key.instance for r in store.claim_due("t", 0, T0, 10, LEASE, "b1")] == ["b"]
        finally:
            store.close()


@on(SQL_BACKENDS)
def test_skip_table_create_names_the_missing_quarantine_columns_until_migrated(
    backend: ModuleType,
) -> None:
    with previous_tables(backend) as (existing, ns):
        checking = SQLStore(existing.url, namespace=ns, skip_table_create=True)
        migrating = SQLStore(existing.url, namespace=ns)
        try:
            with pytest.raises(
                StoreError, match=r"quarantined_at.*quarantine_reason.*_strikes\.reason.*migrate"
            ):
                checking.setup()

            migrating.setup()

            checking.setup()  # passes now
            assert checking.get(key("b")) is not None
        finally:
            checking.close()
            migrating.close()


@on(SQL_BACKENDS)
def test_a_quarantined_row_is_out_of_the_ready_range_with_its_lease_cleared(
    backend: ModuleType,
) -> None:
    with sql_store(backend) as store:
        store.upsert(record("a"), T0)
        (claimed,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")

        assert store.quarantine(key("a"), claimed.lease, "cannot compute", T0) is True

        c = build_schema(store.namespace).instances.c
        with engine_of(store).connect() as conn:
            row = conn.execute(
                select(c.ready_at, c.lease, c.locked_until, c.quarantined_at, c.quarantine_reason)
            ).one()
        assert tuple(row) == (OUT_OF_INDEX, None, None, T0, "cannot compute")

        store.upsert(record("a"), T0)

        with engine_of(store).connect() as conn:
            row = conn.execute(select(c.ready_at, c.quarantined_at, c.quarantine_reason)).one()
        assert tuple(row) == (T0, None, None)


@on(SQL_BACKENDS)
def test_setups_racing_to_migrate_the_previous_schema_all_succeed(backend: ModuleType) -> None:
    with previous_tables(backend) as (existing, ns):
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
                thread.join(60)

            assert errors == []
            assert stores[1].quarantine(key("a"), None, "bad", T0) is True
            assert [q.key for q in stores[2].list_quarantined()] == [key("a")]
        finally:
            for store in stores:
                store.close()
