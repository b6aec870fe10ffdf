"""The memory store for the contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery_pyncette.stores.base import InstanceKey, Store, Strike, strike_id
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


#: The memory store keeps records as Python objects: nothing in it can be undecodable (a spec
#: that is not a schedule is the dispatcher's to quarantine, with quarantine()).
CORRUPTIONS: dict[str, str] = {}
HEALED_BY_CLAIM: dict[str, str] = {}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED: dict[str, str] = {}


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """Nothing to corrupt (see CORRUPTIONS)."""
    raise NotImplementedError(f"the memory store cannot hold an undecodable {field}")


def write_legacy_strike(store: Store, strike: Strike) -> None:
    """Put ``strike`` in the store's strike table directly, as a version before reasons did (a
    Strike object without one)."""
    assert isinstance(store, MemoryStore)
    assert strike.reason is None
    store._strikes[strike_id(strike)] = strike
