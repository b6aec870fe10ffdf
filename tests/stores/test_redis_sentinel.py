"""Redis store through Redis Sentinel: the URL, the primary found after a failover, the scripts
loaded again on it, and fork safety."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import redis
from redis.sentinel import MasterNotFoundError, Sentinel

from celery_pyncette.errors import ConfigurationError, StoreError
from celery_pyncette.stores import store_from_url
from celery_pyncette.stores.base import Commit, InstanceKey, InstanceRecord
from celery_pyncette.stores.redis import RedisStore
from celery_pyncette.stores.redis._scripts import SCRIPTS
from celery_pyncette.stores.redis._sentinel import SentinelURL, parse_sentinel_url
from tests.backends import redis_sentinel
from tests.support.servers.local_redis import delete_namespace, free_port
from tests.support.servers.local_sentinel import (
    SERVICE,
    LocalSentinel,
    private_sentinel,
    session_sentinel,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
R = TypeVar("R")


def record(name: str, partition: int = 0) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", partition, name), T0, {"cron": "* * * * *"}, {"n": name})


# --- the URL ---------------------------------------------------------------------------------


def test_a_full_url_names_sentinels_master_database_and_passwords() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://app:s%40cret@s1:26380,[::1],s3/4?service_name=main"
        "&sentinel_username=watch&sentinel_password=w%26d&min_other_sentinels=1"
        "&socket_timeout=2.5&socket_connect_timeout=1&health_check_interval=30"
    )

    assert parsed == SentinelURL(
        sentinels=(("s1", 26380), ("::1", 26379), ("s3", 26379)),
        service_name="main",
        db=4,
        username="app",
        password="s@cret",
        sentinel_username="watch",
        sentinel_password="w&d",
        min_other_sentinels=1,
        options={"socket_timeout": 2.5, "socket_connect_timeout": 1.0, "health_check_interval": 30},
    )
    assert "cret" not in repr(parsed)
    assert "w&d" not in repr(parsed)
    assert parsed.safe() == "redis+sentinel://s1:26380,[::1]:26379,s3:26379/4?service_name=main"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel://s1?service_name=m", SentinelURL((("s1", 26379),), "m")),
        (
            "redis+sentinel://:p@s1/?master_name=m",
            SentinelURL((("s1", 26379),), "m", password="p"),
        ),
    ],
)
def test_defaults_and_kombus_master_name(url: str, expected: SentinelURL) -> None:
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://s1:26379/0", "no master name"),
        ("redis+sentinel:///0?service_name=m", "no sentinel hosts"),
        ("redis+sentinel://s1,,s2?service_name=m", "empty sentinel host"),
        ("redis+sentinel://s1:port?service_name=m", "port must be a number"),
        ("redis+sentinel://s1:0?service_name=m", "port must be a number"),
        ("redis+sentinel://:26379?service_name=m", "has no host name"),
        ("redis+sentinel://[::1?service_name=m", "Invalid IPv6"),
        ("redis+sentinel://s1/mymaster", "must be the database number"),
        ("redis+sentinel://s1?service_name=m&db=2", "the database is the path"),
        ("redis+sentinel://s1?service_name=m&sockettimeout=2", "unknown option 'sockettimeout'"),
        ("redis+sentinel://s1?service_name=m&socket_timeout=0", "socket_timeout='0': must be > 0"),
        ("redis+sentinel://s1?service_name=m&min_other_sentinels=-1", "must be >= 0"),
        ("redis+sentinel://s1?service_name=m&service_name=n", "given twice"),
        ("redis+sentinel://s1?service_name=m&master_name=m", "not both"),
        ("redis+sentinel://s1?service_name=", "must not be empty"),
    ],
)
def test_a_bad_url_is_a_configuration_error_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match="redis\\+sentinel URL") as caught:
        RedisStore(url, namespace="app")

    assert problem in str(caught.value)


def test_the_options_reach_the_primary_and_the_sentinels_clients() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://app:pw@s1:1,s2:2/5?service_name=m&sentinel_username=watch"
        "&sentinel_password=spw&min_other_sentinels=1&socket_timeout=2&health_check_interval=30"
    )
    client, sentinel = parsed.connect({"socket_connect_timeout": 5.0, "socket_timeout": 10.0})
    try:
        primary: dict[str, Any] = client.connection_pool.connection_kwargs
        watchers: list[dict[str, Any]] = [
            s.connection_pool.connection_kwargs for s in sentinel.sentinels
        ]

        assert client.connection_pool.service_name == "m"  # type: ignore[attr-defined]
        assert sentinel.min_other_sentinels == 1
        assert (primary["db"], primary["username"], primary["password"]) == (5, "app", "pw")
        assert (primary["socket_timeout"], primary["socket_connect_timeout"]) == (2.0, 5.0)
        assert primary["health_check_interval"] == 30
        assert [(w["host"], w["port"]) for w in watchers] == [("s1", 1), ("s2", 2)]
        for watcher in watchers:
            assert (watcher["username"], watcher["password"]) == ("watch", "spw")
            assert (watcher["socket_timeout"], watcher["socket_connect_timeout"]) == (2.0, 5.0)
            assert watcher.get("db", 0) == 0
    finally:
        client.close()


def test_a_url_urllib_cannot_split_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Invalid IPv6 URL") as caught:
        store_from_url("redis+sentinel://:hunter2@[::1/0?service_name=m")

    assert "hunter2" not in str(caught.value)


def test_a_bad_url_names_no_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        store_from_url("redis+sentinel://:hunter2@s1/0")

    assert "hunter2" not in str(caught.value)


def test_building_a_sentinel_store_does_no_io() -> None:
    store = store_from_url(f"redis+sentinel://127.0.0.1:{free_port()}/0?service_name=m")

    assert isinstance(store, RedisStore)
    store.close()


def test_no_sentinel_answering_is_a_store_error_without_the_password() -> None:
    port = free_port()
    store = RedisStore(
        f"redis+sentinel://:hunter2@127.0.0.1:{port}/0?service_name=m&socket_connect_timeout=0.5",
        namespace="app",
    )
    try:
        with pytest.raises(StoreError, match="no sentinel named a primary for 'm'") as caught:
            store.get(record("a").key)
    finally:
        store.close()

    assert f"redis+sentinel://127.0.0.1:{port}/0?service_name=m" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert len(str(caught.value)) < 300  # not redis-py's repr of every sentinel client
    assert isinstance(caught.value.__cause__, MasterNotFoundError)


# --- on a local Sentinel deployment -----------------------------------------------------------


@pytest.fixture
def deployment() -> Iterator[LocalSentinel]:
    with private_sentinel() as started:
        yield started


def eventually(call: Callable[[], R], timeout: float = 15.0) -> tuple[R, list[StoreError]]:
    """``call()`` until it does not raise StoreError (bounded); its result and the errors seen."""
    errors: list[StoreError] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(), errors
        except StoreError as exc:
            errors.append(exc)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def replicated(deployment: LocalSentinel) -> None:
    """Wait (bounded) until the replica has every write the primary has (WAIT 1)."""
    with redis.Redis(port=deployment.primary().port, socket_timeout=10) as primary:
        assert primary.execute_command("WAIT", 1, 5000) == 1


def script_loaded(port: int, name: str) -> bool:
    with redis.Redis(port=port, socket_timeout=5) as client:
        return bool(client.script_exists(SCRIPTS[name].sha)[0])


@pytest.mark.parametrize("how", ["SENTINEL FAILOVER", "kill -9 the primary"])
def test_after_a_failover_the_store_finds_the_new_primary_and_loads_its_scripts(
    deployment: LocalSentinel, how: str
) -> None:
    store = RedisStore(deployment.url(2, socket_timeout="2"), namespace="app")
    try:
        store.setup()
        for n in range(6):
            store.upsert(record(f"i{n}", partition=n % 3), T0)
        leased = store.claim_due("t", 0, T0, 10, LEASE, "b1")
        replicated(deployment)
        old, new = deployment.primary(), deployment.replica()
        assert not script_loaded(new.port, "commit")  # SCRIPT LOAD is not replicated

        if how == "SENTINEL FAILOVER":
            deployment.failover()
        else:
            old.kill()
            deployment.wait_switched(old, new)

        # Then the first write reaches the new primary at once or after one failed call
        lost, errors = eventually(
            lambda: store.commit_many(
                [Commit(r.key, r.lease or "", T0 + timedelta(minutes=1)) for r in leased], T0
            )
        )
        assert lost == []
        assert len(errors) <= 1, errors
        assert all(isinstance(e.__cause__, redis.ConnectionError) for e in errors)
        # ... on which the scripts were loaded again, and everything replicated is there
        assert script_loaded(new.port, "commit")
        assert sum(store.count_instances("t", p) for p in range(3)) == 6
        assert store.get(leased[0].key) is not None
        claimed = [store.claim_due("t", p, T0, 10, LEASE, "b2") for p in range(3)]
        assert sorted(r.key.instance for batch in claimed for r in batch) == [
            f"i{n}" for n in range(6) if n % 3 != 0
        ]
        with redis.Redis(port=new.port, db=2) as direct:
            assert direct.dbsize() > 0
    finally:
        store.close()


def test_a_forked_child_finds_the_primary_with_its_own_connection() -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with redis_sentinel.make_store(namespace) as store:
        assert isinstance(store, RedisStore)
        store.upsert(record("parent"), T0)
        parent_client = store._redis()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                store.after_fork()
                fresh = store._redis() is not parent_client
                store.upsert(record("child"), T0)
                code = 0 if fresh and store.get(record("parent").key) else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 20
        while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
            assert time.monotonic() < deadline, "the child did not finish"
            time.sleep(0.02)

        assert os.waitstatus_to_exitcode(waited[1]) == 0
        assert store._redis() is parent_client
        assert [r.key.instance for r in store.list_instances("t", 0, 10)] == ["child", "parent"]


def test_a_given_client_is_used_and_the_url_not_parsed() -> None:
    deployment = session_sentinel()
    hosts = [("127.0.0.1", s.port) for s in deployment.sentinels]
    sentinel = Sentinel(hosts, socket_timeout=5)  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        SERVICE, db=redis_sentinel.DB, socket_timeout=5
    )
    namespace = f"t{uuid.uuid4().hex[:10]}"
    store = RedisStore("redis+sentinel://", namespace=namespace, client=client)
    try:
        store.upsert(record("a"), T0)

        assert store.get(record("a").key) is not None
    finally:
        store.close()
        delete_namespace(client, namespace)
        client.close()


def test_the_url_database_is_the_one_used() -> None:
    deployment = session_sentinel()
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with redis_sentinel.make_store(namespace) as store:
        store.upsert(record("a"), T0)
        with redis.Redis(port=deployment.primary().port, db=redis_sentinel.DB) as direct:
            assert list(direct.scan_iter(match=f"{namespace}:*"))
        with redis.Redis(port=deployment.primary().port, db=0) as other:
            assert not list(other.scan_iter(match=f"{namespace}:*"))


def sentinel_clients(deployment: LocalSentinel) -> list[int]:
    """Each sentinel's clients other than this one and the other sentinels (which name their
    links ``sentinel-<id>-cmd``)."""
    counts = []
    for sentinel in deployment.sentinels:
        with redis.Redis(port=sentinel.port, socket_timeout=5) as client:
            clients = client.client_list()
        others = [c for c in clients if not str(c.get("name", "")).startswith("sentinel-")]
        counts.append(len(others) - 1)  # not this one
    return counts


def test_close_closes_the_connections_to_the_primary_and_the_sentinels() -> None:
    deployment = session_sentinel()
    idle = sentinel_clients(deployment)
    store = RedisStore(deployment.url(redis_sentinel.DB), namespace=f"t{uuid.uuid4().hex[:10]}")
    store.get(record("a").key)
    client = store._redis()
    assert isinstance(client, redis.Redis)
    assert sum(sentinel_clients(deployment)) > sum(idle)

    store.close()

    deadline = time.monotonic() + 5
    while sentinel_clients(deployment) != idle:
        assert time.monotonic() < deadline, (sentinel_clients(deployment), idle)
        time.sleep(0.05)
    pool: Any = client.connection_pool
    assert all(c._sock is None for c in pool._available_connections)
