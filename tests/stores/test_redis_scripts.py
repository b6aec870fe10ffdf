"""Redis store: every multi-key change is one Lua script that declares its keys, run by EVALSHA."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from types import ModuleType

import pytest
import redis

from celery_pyncette.stores.base import Commit, InstanceKey, InstanceRecord, Strike
from celery_pyncette.stores.redis import RedisStore
from tests.backends import redis as standalone
from tests.backends import redis_cluster
from tests.support.servers.local_redis import RedisServer, private_server

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
SCRIPTS = sorted(
    p.name
    for p in resources.files("celery_pyncette.stores.redis").iterdir()
    if p.name.endswith(".lua")
)


def record(name: str, partition: int = 0, next_run: datetime = T0) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", partition, name), next_run, {"cron": "* * * * *"})


@pytest.fixture(params=[standalone, redis_cluster], ids=["redis", "redis_cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    backend: ModuleType = request.param
    with backend.make_store(f"t{uuid.uuid4().hex[:10]}") as created:
        assert isinstance(created, RedisStore)
        yield created


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server() as started:
        yield started


def command_calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_key_a_script_touches_is_declared_in_keys(script: str) -> None:
    source = (resources.files("celery_pyncette.stores.redis") / script).read_text("utf-8")
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    # Locals holding keys may only be bound to KEYS[...] (`local a, b = KEYS[1], KEYS[2]`).
    key_locals: set[str] = set()
    for names, values in re.findall(r"local\s+([\w\s,]+?)\s*=\s*([^\n]+)", code):
        bound = [v.strip() for v in values.split(",")]
        for name, value in zip([n.strip() for n in names.split(",")], bound, strict=False):
            if value.startswith("KEYS["):
                key_locals.add(name)

    calls = re.findall(r"redis\.p?call\(\s*'([A-Z]+)'\s*,\s*([^,)]+)", code)

    assert calls, f"{script} runs no command"
    for command, first in calls:
        first = first.strip()
        assert first.startswith("KEYS[") or first in key_locals, (
            f"{script}: {command} {first} is not a declared key"
        )
    for line in code.splitlines():
        if not line.strip().startswith("local "):
            for name in key_locals:
                assert not re.search(rf"\b{name}\s*=[^=]", line), f"{script}: {name} re-bound"


def test_the_store_keeps_working_after_script_flush_on_every_node(store: RedisStore) -> None:
    store.upsert(record("a"), T0)
    store.upsert(record("b", partition=1), T0)
    flush_scripts_everywhere(store)

    (a,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")
    (b,) = store.claim_due("t", 1, T0, 10, LEASE, "b1")
    flush_scripts_everywhere(store)
    store.extend_lease(a.key, a.lease or "", T0 + LEASE * 2)
    flush_scripts_everywhere(store)
    lost = store.commit_many(
        [Commit(a.key, a.lease or "", T0 + timedelta(minutes=1)), Commit(b.key, "stale", T0)], T0
    )
    flush_scripts_everywhere(store)
    assert store.unlock_many([(b.key, b.lease or "")]) == []
    flush_scripts_everywhere(store)
    store.add_strike(Strike("t"))
    flush_scripts_everywhere(store)
    assert store.delete(a.key) is True

    assert lost == [b.key]
    assert store.list_strikes() == [Strike("t")]
    assert [r.key.instance for r in store.claim_due("t", 1, T0, 10, LEASE, "b2")] == ["b"]


def flush_scripts_everywhere(store: RedisStore) -> None:
    client = store._redis()
    if isinstance(client, redis.RedisCluster):
        for node in client.get_primaries():
            client.get_redis_connection(node).script_flush()
    else:
        client.script_flush()


def test_scripts_are_loaded_at_setup_and_then_only_run_by_sha(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    try:
        store.setup()
        loads = command_calls(admin, "script|load")

        store.upsert(record("a"), T0)
        (got,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")
        store.commit(got.key, got.lease or "", T0 + timedelta(minutes=1), T0)

        assert loads == len(SCRIPTS)
        assert command_calls(admin, "script|load") == loads
        assert command_calls(admin, "eval") == 0
        assert command_calls(admin, "evalsha") == 3
    finally:
        store.close()
        admin.close()


def test_an_idle_claim_is_one_index_read_and_no_script(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    try:
        store.setup()
        for n in range(50):
            store.upsert(record(f"i{n}", next_run=T0 + timedelta(hours=1)), T0)
        admin.config_resetstat()

        assert store.claim_due("t", 0, T0, 100, LEASE, "b1") == []

        assert command_calls(admin, "zrangebyscore") == 1
        assert command_calls(admin, "evalsha") == 0
    finally:
        store.close()
        admin.close()


def test_a_batch_claim_is_one_index_read_and_one_script(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    try:
        store.setup()
        for n in range(80):
            store.upsert(record(f"i{n:02d}"), T0)
        admin.config_resetstat()

        claimed = store.claim_due("t", 0, T0, 50, LEASE, "b1")

        assert len(claimed) == 50
        assert command_calls(admin, "zrangebyscore") == 1
        assert command_calls(admin, "evalsha") == 1
    finally:
        store.close()
        admin.close()


def test_a_claim_that_takes_everything_due_needs_no_second_read(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    try:
        store.setup()
        for n in range(3):
            store.upsert(record(f"i{n}"), T0)
        store.upsert(record("later", next_run=T0 + timedelta(hours=1)), T0)
        admin.config_resetstat()

        claimed = store.claim_due("t", 0, T0, 100, LEASE, "b1")

        assert [r.key.instance for r in claimed] == ["i0", "i1", "i2"]
        assert command_calls(admin, "zrangebyscore") == 1
        assert command_calls(admin, "evalsha") == 1
    finally:
        store.close()
        admin.close()


def test_commit_many_and_unlock_many_run_one_script_per_partition(server: RedisServer) -> None:
    store = RedisStore(server.url, namespace="app")
    admin = redis.Redis(port=server.port)
    try:
        store.setup()
        for partition in range(3):
            for n in range(40):
                store.upsert(record(f"i{n:02d}", partition), T0)
        claimed = [r for p in range(3) for r in store.claim_due("t", p, T0, 100, LEASE, "b1")]
        commits, unlocks = claimed[::2], claimed[1::2]
        admin.config_resetstat()

        lost = store.commit_many(
            [Commit(r.key, r.lease or "", T0 + timedelta(minutes=1)) for r in commits], T0
        )
        after_commits = command_calls(admin, "evalsha")
        lost += store.unlock_many([(r.key, r.lease or "") for r in unlocks])

        assert lost == []
        assert after_commits == 3
        assert command_calls(admin, "evalsha") == 6
        assert len(store.claim_due("t", 0, T0, 100, LEASE, "b2")) == 20
    finally:
        store.close()
        admin.close()
