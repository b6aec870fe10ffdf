"""The Redis store through Redis Sentinel: a local primary, replica and three sentinels that the
tests start themselves (never failed over: the failover tests start their own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from celery_pyncette.stores.base import Store
from celery_pyncette.stores.redis import RedisStore
from tests.backends._redis_garbage import (  # the same hash layout as plain Redis
    CORRUPTIONS,
    FIELD_LABELS,
    HEALED_BY_CLAIM,
    TOLERATED,
    corrupt,
)
from tests.support.servers.local_redis import delete_namespace
from tests.support.servers.local_sentinel import session_sentinel

NAME = "redis_sentinel"
#: Not database 0, so the URL's database is known to be used.
DB = 3


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh store in its own namespace; its keys are deleted from the primary afterwards."""
    deployment = session_sentinel()
    store = RedisStore(deployment.url(DB), namespace=namespace)
    try:
        store.setup()
        yield store
    finally:
        store.close()
        cleaner = redis.Redis(port=deployment.primary().port, db=DB, socket_timeout=10)
        try:
            delete_namespace(cleaner, namespace)
        finally:
            cleaner.close()


@contextmanager
def make_second_client(store: Store) -> Iterator[Store]:
    """Another client ("another process") on the same namespace."""
    other = RedisStore(session_sentinel().url(DB), namespace=store.namespace)
    try:
        yield other
    finally:
        other.close()


__all__ = ["CORRUPTIONS", "FIELD_LABELS", "HEALED_BY_CLAIM", "NAME", "TOLERATED", "corrupt"]
