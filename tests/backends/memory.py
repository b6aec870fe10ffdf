"""The memory store for the contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery_pyncette.stores.base import Store
from celery_pyncette.stores.memory import MemoryStore

NAME = "memory"


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh, empty store."""
    store = MemoryStore("memory://", namespace=namespace)
    store.setup()
    try:
        yield store
    finally:
        store.close()
