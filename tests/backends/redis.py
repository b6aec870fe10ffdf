"""The Redis store on the local server (``PYNCETTE_TEST_REDIS_URL``, default 127.0.0.1:6379/9)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import redis

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
from tests.support.servers import require_server
from tests.support.servers.local_redis import delete_namespace

NAME = "redis"
URL = os.environ.get("PYNCETTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh store in its own namespace; its keys are deleted afterwards."""
    parts = urlsplit(URL)
    require_server("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    store = RedisStore(URL, namespace=namespace)
    try:
        store.setup()
        yield store
    finally:
        store.close()
        cleaner = redis.Redis.from_url(URL, socket_timeout=10)
        try:
            delete_namespace(cleaner, namespace)
        finally:
            cleaner.close()


@contextmanager
def make_second_client(store: Store) -> Iterator[Store]:
    """Another client ("another process") on the same namespace."""
    other = RedisStore(URL, namespace=store.namespace)
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
