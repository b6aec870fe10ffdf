"""The SQL store on an SQLite file (WAL) in a temporary directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery_pyncette.stores.base import Store
from celery_pyncette.stores.sql import SQLStore

NAME = "sqlite"


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh store in a new database file, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyncette-sqlite-") as folder:
        url = f"sqlite:///{Path(folder) / 'store.db'}"
        store = SQLStore(url, namespace=namespace)
        try:
            store.setup()
            yield store
        finally:
            store.close()


@contextmanager
def make_second_client(store: Store) -> Iterator[Store]:
    """Another client ("another process") on the same file and namespace."""
    other = SQLStore(store.url, namespace=store.namespace)
    try:
        yield other
    finally:
        other.close()
