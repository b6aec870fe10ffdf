"""Redis store: failures surface quickly as StoreError, and the store recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Strike
from celery_pyncette.stores.redis import RedisStore
from tests.support.servers.local_redis import LocalCluster, RedisServer, free_port, private_server

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


def record(name: str, partition: int = 0) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", partition, name), T0, {"cron": "* * * * *"}, {"n": name})


def key(name: str) -> InstanceKey:
    return InstanceKey("t", 0, name)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server(*PERSISTENT) as started:
        yield started


def fails_quickly(call: object, within: float = 3.0) -> StoreError:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        call()  # type: ignore[operator]
    assert time.monotonic() - started < within
    return caught.value


@pytest.mark.parametrize("how", ["kill -9", "shutdown"])
def test_calls_fail_while_the_server_is_down_and_succeed_after_it_restarts(
    server: RedisServer, how: str
) -> None:
    store = RedisStore(server.url, namespace="app")
    try:
        store.setup()
        for n in range(20):
            store.upsert(record(f"i{n:02d}"), T0)
        (leased,) = store.claim_due("t", 0, T0, 1, LEASE, "b1")
        store.add_strike(Strike("t", "user", "==", 1))

        if how == "kill -9":
            server.kill()
        else:
            server.stop()
        error = fails_quickly(lambda: store.get(key("i01")))
        fails_quickly(lambda: store.claim_due("t", 0, T0, 10, LEASE, "b1"))
        fails_quickly(lambda: store.upsert(record("new"), T0))
        server.start()

        assert isinstance(error.__cause__, redis.ConnectionError)
        assert store.count_instances("t", 0) == 20
        assert [r.key.instance for r in store.list_instances("t", 0, 100)] == [
            f"i{n:02d}" for n in range(20)
        ]
        assert store.list_strikes() == [Strike("t", "user", "==", 1)]
        store.commit(leased.key, leased.lease or "", T0 + timedelta(minutes=1), T0)
        assert len(store.claim_due("t", 0, T0, 100, LEASE, "b2")) == 19
    finally:
        store.close()


def test_a_hung_server_times_out_as_store_error_and_recovers(server: RedisServer) -> None:
    store = RedisStore(server.url + "?socket_timeout=0.3", namespace="app")
    try:
        store.upsert(record("a"), T0)
        server.pause()
        try:
            error = fails_quickly(lambda: store.get(key("a")))
        finally:
            server.resume()

        assert isinstance(error.__cause__, redis.TimeoutError)
        assert store.get(key("a")) is not None
    finally:
        store.close()


def test_a_server_error_is_a_store_error_with_the_reply_chained(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    try:
        store.upsert(record("a"), T0)
        ready = next(admin.scan_iter(match="app:*:ready"))
        admin.set(ready, "not a sorted set")

        error = fails_quickly(lambda: store.claim_due("t", 0, T0, 10, LEASE, "b1"))

        assert isinstance(error.__cause__, redis.ResponseError)
        assert "WRONGTYPE" in str(error)
    finally:
        store.close()
        admin.close()


def test_an_unreachable_server_or_cluster_is_a_store_error() -> None:
    port = free_port()
    for url in (f"redis://127.0.0.1:{port}", f"redis+cluster://127.0.0.1:{port}"):
        store = RedisStore(url + "?socket_connect_timeout=0.5", namespace="app")
        try:
            fails_quickly(lambda s=store: s.get(key("a")))  # type: ignore[misc]
        finally:
            store.close()


def test_a_cluster_node_restart_fails_calls_then_the_store_recovers() -> None:
    cluster = LocalCluster()
    for server in cluster.servers:
        server.options += PERSISTENT
    cluster.start()
    store = RedisStore(
        cluster.url + "?socket_connect_timeout=0.5&socket_timeout=1", namespace="app"
    )
    try:
        for partition in range(12):
            store.upsert(record("a", partition), T0)
        victim = cluster.servers[1]

        victim.kill()
        errors = []
        for partition in range(12):
            try:
                store.get(InstanceKey("t", partition, "a"))
            except StoreError as exc:
                errors.append(exc)
        victim.start()

        assert errors, "no partition lived on the killed node"
        assert all(e.__cause__ is not None for e in errors)
        deadline = time.monotonic() + 15
        while True:
            try:
                found = [store.get(InstanceKey("t", p, "a")) for p in range(12)]
                break
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert all(found)
    finally:
        store.close()
        cluster.stop()
