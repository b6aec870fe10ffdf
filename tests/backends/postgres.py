"""The SQL store on the local PostgreSQL (``PYNCETTE_TEST_POSTGRES_URL``, default database test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from celery_pyncette.stores.base import Store
from celery_pyncette.stores.sql import SQLStore
from tests.servers import require_server

NAME = "postgresql"
URL = os.environ.get("PYNCETTE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require() -> None:
    """Skip (locally) or fail (in CI) when the server is down."""
    parsed = make_url(URL)
    require_server("PostgreSQL", parsed.host or "127.0.0.1", parsed.port or 5432)


def drop_tables(namespace: str) -> None:
    """Drop the tables of ``namespace``."""
    engine = create_engine(URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            for suffix in ("instances", "strikes", "meta"):
                conn.execute(text(f'DROP TABLE IF EXISTS "{namespace}_{suffix}"'))
    finally:
        engine.dispose()


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh store in its own namespace (its own tables), dropped afterwards."""
    require()
    store = SQLStore(URL, namespace=namespace)
    try:
        store.setup()
        yield store
    finally:
        store.close()
        drop_tables(namespace)


@contextmanager
def make_second_client(store: Store) -> Iterator[Store]:
    """Another client ("another process") on the same namespace."""
    other = SQLStore(URL, namespace=store.namespace)
    try:
        yield other
    finally:
        other.close()
