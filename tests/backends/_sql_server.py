"""What the PostgreSQL and MariaDB backends share: a server URL, its tables per namespace."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from celery_pyncette.stores.base import InstanceKey, Store, Strike, strike_id
from celery_pyncette.stores.sql import SQLStore
from tests.support.servers import require_server


def write_raw(
    store: Store, key: InstanceKey, column: str, value: str | bytes, quote: str = '"'
) -> None:
    """Write ``value`` into one column of an instance row, bypassing the store's types: how a
    hand-made UPDATE or another program corrupts a row. ``bytes`` are written as text
    (``CAST(... AS TEXT)``), valid UTF-8 or not: SQLite keeps what it is given."""
    assert isinstance(store, SQLStore)
    url = store._url  # the store's own driver URL
    engine = create_engine(url)
    q = quote
    assigned = "CAST(:value AS TEXT)" if isinstance(value, bytes) else ":value"
    try:
        with engine.begin() as conn:
            if url.get_backend_name() in {"mysql", "mariadb"}:
                conn.execute(text("SET SESSION sql_mode = ''"))  # let the zero date in
            changed = conn.execute(
                text(
                    f"UPDATE {q}{store.namespace}_instances{q} SET {q}{column}{q} = {assigned}"
                    f" WHERE task = :task AND {q}partition{q} = :partition"
                    " AND instance = :instance"
                ),
                {
                    "value": value,
                    "task": key.task,
                    "partition": key.partition,
                    "instance": key.instance,
                },
            ).rowcount
        assert changed == 1, f"{key} not found"
    finally:
        engine.dispose()


def write_legacy_strike(store: Store, strike: Strike, quote: str = '"') -> None:
    """INSERT ``strike``'s row naming only the columns a version before reasons wrote (``id``,
    ``strike``): the ``reason`` column that ``setup()`` added to such a table is NULL."""
    assert isinstance(store, SQLStore)
    assert strike.reason is None
    ident = strike_id(strike)
    engine = create_engine(store._url)
    q = quote
    try:
        with engine.begin() as conn:
            conn.execute(
                text(f"INSERT INTO {q}{store.namespace}_strikes{q} (id, strike) VALUES (:id, :s)"),
                {"id": hashlib.sha256(ident.encode("utf-8")).hexdigest(), "s": ident},
            )
    finally:
        engine.dispose()


class SQLServer:
    """One SQL server the tests reach by URL (the URL's driver-less form, as users write it)."""

    def __init__(self, label: str, url: str, default_port: int, driver: str, quote: str) -> None:
        """``quote``: the server's identifier quote."""
        self.label = label
        self.url = url
        self.default_port = default_port
        self.driver = driver
        self.quote = quote

    def require(self) -> None:
        """Skip (locally) or fail (in CI) when the server is down."""
        parsed = make_url(self.url)
        require_server(self.label, parsed.host or "127.0.0.1", parsed.port or self.default_port)

    def drop_tables(self, namespace: str) -> None:
        """Drop the tables of ``namespace``."""
        scheme = self.url.split("://", 1)[0]
        engine = create_engine(self.url.replace(f"{scheme}://", f"{self.driver}://", 1))
        q = self.quote
        try:
            with engine.begin() as conn:
                for suffix in ("instances", "strikes", "meta"):
                    conn.execute(text(f"DROP TABLE IF EXISTS {q}{namespace}_{suffix}{q}"))
        finally:
            engine.dispose()

    def corrupt(self, store: Store, key: InstanceKey, column: str, value: str) -> None:
        """See :func:`write_raw`."""
        write_raw(store, key, column, value, self.quote)

    def write_legacy_strike(self, store: Store, strike: Strike) -> None:
        """See the module's :func:`write_legacy_strike`."""
        write_legacy_strike(store, strike, self.quote)

    @contextmanager
    def make_store(self, namespace: str) -> Iterator[Store]:
        """A fresh store in its own namespace (its own tables), dropped afterwards."""
        self.require()
        store = SQLStore(self.url, namespace=namespace)
        try:
            store.setup()
            yield store
        finally:
            store.close()
            self.drop_tables(namespace)

    @contextmanager
    def make_second_client(self, store: Store) -> Iterator[Store]:
        """Another client ("another process") on the same namespace."""
        other = SQLStore(self.url, namespace=store.namespace)
        try:
            yield other
        finally:
            other.close()
