"""Redis store: lazy connection, a client passed in, fork safety and the set-up checks."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis

from celery_pyncette.errors import StoreError
from celery_pyncette.stores import store_from_url
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Strike
from celery_pyncette.stores.redis import RedisStore
from tests.backends import redis as standalone
from tests.support.servers import require_server
from tests.support.servers.local_redis import (
    RedisServer,
    delete_namespace,
    free_port,
    private_server,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def record(name: str) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", 0, name), T0, {"cron": "* * * * *"}, {"name": name})


@pytest.fixture
def namespace() -> Iterator[str]:
    require_server("Redis", "127.0.0.1", 6379)
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    cleaner = redis.Redis.from_url(standalone.URL)
    delete_namespace(cleaner, name)
    cleaner.close()


@pytest.mark.parametrize("scheme", ["redis", "rediss", "redis+cluster"])
def test_building_a_store_does_no_io(scheme: str) -> None:
    store = store_from_url(f"{scheme}://127.0.0.1:{free_port()}/0", namespace="app")

    assert isinstance(store, RedisStore)
    store.close()


def test_a_given_client_is_used_and_left_open(namespace: str) -> None:
    client = redis.Redis.from_url(standalone.URL, decode_responses=True)
    store = RedisStore("redis://unused", namespace=namespace, client=client)
    try:
        store.setup()
        store.upsert(record("ünï {x}"), T0)
        store.add_strike(Strike("t"))
        (got,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")
        [listed] = store.list_instances("t", 0, 10)
        store.commit(got.key, got.lease or "", T0 + timedelta(minutes=1), T0)

        assert got.key.instance == "ünï {x}"
        assert listed.key == got.key
        assert store.list_strikes() == [Strike("t")]
        assert store.strikes_marker() != "0"
    finally:
        store.close()

    assert client.ping() is True
    client.close()


def test_a_closed_store_refuses_calls(namespace: str) -> None:
    store = RedisStore(standalone.URL, namespace=namespace)
    store.upsert(record("a"), T0)
    store.close()
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.get(record("a").key)


def test_a_forked_child_uses_its_own_connection(namespace: str) -> None:
    store = RedisStore(standalone.URL, namespace=namespace)
    try:
        store.upsert(record("parent"), T0)
        parent_client = store._redis()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                store.after_fork()
                fresh = store._redis() is not parent_client
                store.upsert(record("child"), T0)
                code = 0 if fresh and store.get(record("parent").key) else 2
            finally:
                os.write(write, bytes([code]))
                os._exit(code)
        os.close(write)
        deadline = time.monotonic() + 20
        while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
            assert time.monotonic() < deadline, "the child did not finish"
            time.sleep(0.02)
        status = os.read(read, 1)
        os.close(read)

        assert os.waitstatus_to_exitcode(waited[1]) == 0, status
        assert store._redis() is parent_client
        assert [r.key.instance for r in store.list_instances("t", 0, 10)] == ["child", "parent"]
    finally:
        store.close()


@pytest.fixture
def evicting_server() -> Iterator[RedisServer]:
    with private_server("--maxmemory-policy", "allkeys-lru", "--appendonly", "yes") as server:
        yield server


def test_setup_warns_about_an_evicting_maxmemory_policy(
    evicting_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(evicting_server.url, namespace="app")
    with caplog.at_level(logging.WARNING, "celery_pyncette.stores.redis"):
        store.setup()
    store.close()

    messages = [r.getMessage() for r in caplog.records]
    assert any("allkeys-lru" in m and "noeviction" in m for m in messages)
    assert not any("appendonly" in m for m in messages)


def test_setup_warns_when_the_server_persists_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with private_server() as server:
        store = RedisStore(server.url, namespace="app")
        with caplog.at_level(logging.WARNING, "celery_pyncette.stores.redis"):
            store.setup()
        store.close()

    assert any("lost when the server restarts" in r.getMessage() for r in caplog.records)


def test_setup_tolerates_a_disabled_config_command() -> None:
    with private_server("--rename-command", "CONFIG", "", "--appendonly", "yes") as server:
        store = RedisStore(server.url, namespace="app")
        try:
            store.setup()
            store.upsert(record("a"), T0)

            assert store.get(record("a").key) is not None
        finally:
            store.close()


def test_a_naive_time_is_rejected(namespace: str) -> None:
    store = RedisStore(standalone.URL, namespace=namespace)
    try:
        with pytest.raises(ValueError, match="naive"):
            store.upsert(record("a"), datetime(2030, 1, 1))
    finally:
        store.close()
