"""The Redis store on a local 3-master Redis Cluster that the tests start themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.cluster import RedisCluster

from celery_pyncette.stores.base import InstanceKey, Store
from celery_pyncette.stores.redis import RedisStore, instance_key, partition_prefix
from tests.redis_cluster import delete_namespace, session_cluster

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


#: Hash field -> garbage. n and u are read by the claim script (which quarantines them: it
#: cannot tell whether the instance is due), s and a by Python after the claim.
CORRUPTIONS: dict[str, str | bytes] = {
    "n": "soon",
    "u": "later",
    "s": "not json {",
    "a": "[1, 2]",
    "a/utf-8": b'{"a": "\xff"}',  # not UTF-8: must not fail the claim's whole reply
}
#: How reasons name the hash fields.
FIELD_LABELS = {"n": "next_run (n)", "u": "locked_until (u)", "s": "spec (s)", "a": "args (a)"}
#: Nothing the claim overwrites without reading.
HEALED_BY_CLAIM: dict[str, str] = {}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED = {"r": "yesterday"}


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """HSET the garbage of ``field`` into the instance's hash."""
    assert isinstance(store, RedisStore)
    name = instance_key(partition_prefix(store.namespace, key.task, key.partition), key.instance)
    client = store._redis()
    assert client.exists(name), f"{key} not found"
    client.hset(name, field.split("/", 1)[0], {**CORRUPTIONS, **TOLERATED}[field])
