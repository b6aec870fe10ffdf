"""The Redis store on a local 3-master Redis Cluster that the tests start themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.cluster import RedisCluster

from celery_pyncette.stores.base import Store
from celery_pyncette.stores.redis import RedisStore
from tests.backends._redis_garbage import (  # the same hash layout on both
    CORRUPTIONS,
    FIELD_LABELS,
    HEALED_BY_CLAIM,
    TOLERATED,
    corrupt,
    write_legacy_strike,
)
from tests.support.servers.local_redis import delete_namespace, session_cluster

NAME = "redis_cluster"


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh store in its own namespace on the session's cluster; its keys are deleted after."""
    cluster = session_cluster()
    store = RedisStore(cluster.url, namespace=namespace)
    try:
        store.setup()
        yield store
    finally:
        store.close()
        cleaner = RedisCluster(host="127.0.0.1", port=cluster.ports[0], socket_timeout=10)
        try:
            delete_namespace(cleaner, namespace)
        finally:
            cleaner.close()


@contextmanager
def make_second_client(store: Store) -> Iterator[Store]:
    """Another client ("another process") on the same namespace."""
    other = RedisStore(session_cluster().url, namespace=store.namespace)
    try:
        yield other
    finally:
        other.close()


__all__ = [
    "CORRUPTIONS",
    "FIELD_LABELS",
    "HEALED_BY_CLAIM",
    "NAME",
    "TOLERATED",
    "corrupt",
    "write_legacy_strike",
]
