"""Redis store: the key layout -- namespaces, hash tags per task partition, spread over shards."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis
from redis.crc import key_slot

from celery_pyncette.errors import ConfigurationError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Strike
from celery_pyncette.stores.redis import RedisStore, instance_key, partition_prefix
from tests.support.servers.local_redis import (
    RedisServer,
    delete_namespace,
    private_server,
    session_cluster,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
AWKWARD = ["{x}", "a:b", "}{", "*", "with space", "ünï ✓", "y" * 1024]


def record(name: str, task: str = "t", partition: int = 0, **args: object) -> InstanceRecord:
    return InstanceRecord(InstanceKey(task, partition, name), T0, {"cron": "* * * * *"}, args)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server() as started:
        yield started


def hash_tag(key: bytes) -> bytes:
    start = key.index(b"{")
    return key[start + 1 : key.index(b"}", start)]


@pytest.mark.parametrize("task", ["plain.task", "{braces}", "a:b:c", "}{", "ünï", ""])
def test_the_hash_tag_encodes_the_task_so_no_name_can_break_it(task: str) -> None:
    prefix = partition_prefix("app", task, 7)

    keys = [prefix + b":ready", prefix + b":names"] + [instance_key(prefix, n) for n in AWKWARD]

    assert hash_tag(prefix) == f"{task.encode().hex()}.7".encode()
    assert {key_slot(k) for k in keys} == {key_slot(hash_tag(prefix))}


def test_the_namespace_prefixes_every_key(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app1")
    try:
        for partition in range(3):
            for name in AWKWARD:
                store.upsert(record(name, "task{1}", partition), T0)
        store.claim_due("task{1}", 0, T0, 2, LEASE, "b1")
        store.add_strike(Strike("task{1}"))

        keys = list(redis.Redis(port=server.port).scan_iter(count=1000))
    finally:
        store.close()

    assert len(keys) == 3 * (2 + len(AWKWARD)) + 2
    assert all(key.startswith(b"app1:{") for key in keys)


def test_two_namespaces_on_one_server_never_see_each_other(server: RedisServer) -> None:
    first = RedisStore(server.url, namespace="app")
    second = RedisStore(server.url, namespace="app2")
    try:
        first.upsert(record("same", v=1), T0)
        second.upsert(record("same", v=2), T0)
        second.upsert(record("only-second"), T0)
        first.add_strike(Strike("t"))

        claimed = first.claim_due("t", 0, T0, 10, LEASE, "b1")

        assert [r.args["v"] for r in claimed] == [1]
        assert [r.key.instance for r in second.list_instances("t", 0, 10)] == [
            "only-second",
            "same",
        ]
        assert [r.key.instance for r in first.list_instances("t", 0, 10)] == ["same"]
        assert len(second.claim_due("t", 0, T0, 10, LEASE, "b2")) == 2
        assert second.list_strikes() == []
        assert second.strikes_marker() == "0"
        assert first.delete(InstanceKey("t", 0, "same")) is True
        assert second.get(InstanceKey("t", 0, "same")) is not None
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("namespace", ["", "a{b", "a}b"])
def test_a_namespace_that_would_break_the_hash_tag_is_rejected(namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        RedisStore("redis://127.0.0.1:1", namespace=namespace)


def test_partitions_spread_over_shards_and_each_partition_lives_in_one_slot() -> None:
    cluster = session_cluster()
    store = RedisStore(cluster.url, namespace="spread")
    admin = redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    try:
        for partition in range(24):
            for name in AWKWARD[:3]:
                store.upsert(record(name, "a{b}:c", partition), T0)
            store.claim_due("a{b}:c", partition, T0, 1, LEASE, "b1")

        slots: dict[bytes, set[int]] = defaultdict(set)
        nodes: dict[bytes, set[int]] = defaultdict(set)
        for node in admin.get_primaries():
            for key in admin.get_redis_connection(node).scan_iter(match="spread:*", count=1000):
                tag = hash_tag(key)
                slots[tag].add(key_slot(key))
                nodes[tag].add(node.port)
    finally:
        store.close()
        delete_namespace(admin, "spread")
        admin.close()

    assert len(slots) == 24
    assert all(len(s) == 1 for s in slots.values())
    assert all(len(n) == 1 for n in nodes.values())
    assert len({port for ports in nodes.values() for port in ports}) == 3
    assert all(re.fullmatch(rb"[0-9a-f]+\.\d+", tag) for tag in slots)


def test_leases_are_uuid4_hex_and_times_are_exact_aware_utc(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    precise = T0 + timedelta(microseconds=123457)
    try:
        store.upsert(InstanceRecord(InstanceKey("t", 0, "a"), precise), T0)
        (got,) = store.claim_due("t", 0, precise, 1, LEASE, "b1")
        stored = admin.hgetall(instance_key(partition_prefix("app", "t", 0), "a"))
        score = admin.zscore(partition_prefix("app", "t", 0) + b":ready", "a")
    finally:
        store.close()
        admin.close()

    assert got.lease is not None
    assert uuid.UUID(hex=got.lease).version == 4
    assert got.lease == uuid.UUID(hex=got.lease).hex
    assert got.next_run == precise
    assert got.next_run.tzinfo is timezone.utc
    assert got.locked_until == precise + LEASE
    assert int(stored[b"u"]) == int((precise + LEASE).timestamp()) * 10**6 + 123457
    assert score == int(stored[b"u"])


def test_every_strike_change_moves_the_marker_by_one(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    try:
        store.add_strike(Strike("t"))
        first = int(store.strikes_marker())
        store.add_strike(Strike("t"))
        store.remove_strike(Strike("t"))
        store.remove_strike(Strike("t"))

        assert int(store.strikes_marker()) == first + 3
        assert first > 1  # starts at a random value, not at 0
    finally:
        store.close()
