"""The SQL store on an SQLite file (WAL) in a temporary directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery_pyncette.stores.base import InstanceKey, Store
from celery_pyncette.stores.sql import SQLStore
from tests.backends._sql_server import write_legacy_strike, write_raw

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


#: Field -> garbage the claim quarantines (SQLite keeps any text in any column).
CORRUPTIONS: dict[str, str | bytes] = {
    "spec": "not json {",
    "args": "[1, 2]",
    "args/utf-8": b'{"a": "\xff"}',  # not UTF-8: sqlite3 would fail the whole fetch
    "next_run": "soon",
}
#: Field -> garbage that get/list_instances refuse and a claim overwrites.
HEALED_BY_CLAIM = {"locked_until": "never"}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED = {"last_run_at": "yesterday"}


__all__ = ["write_legacy_strike"]


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """Write the garbage of ``field`` into the row (a raw UPDATE)."""
    garbage = {**CORRUPTIONS, **HEALED_BY_CLAIM, **TOLERATED}[field]
    write_raw(store, key, field.split("/", 1)[0], garbage)
