"""Redis store: where quarantined instances live, and scripts that meet a garbage next run.

The contract (tests/contract/test_quarantine_contract.py) covers what a quarantine does; these
tests pin the Redis layout: the partition's quarantine hash (in the partition's slot, written by
the claim script itself), the namespace's set of partitions with quarantined instances, and the
scripts other than the claim that read ``n``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import ModuleType

import pytest

from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.redis import RedisStore, instance_key, partition_prefix
from celery_pyncette.stores.redis._layout import quarantine_index_key, quarantine_key
from tests.backends import redis as standalone
from tests.backends import redis_cluster

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def record(name: str, partition: int = 0) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", partition, name), T0, {"cron": "* * * * *"})


@pytest.fixture(params=[standalone, redis_cluster], ids=["redis", "redis_cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    backend: ModuleType = request.param
    with backend.make_store(f"t{uuid.uuid4().hex[:10]}") as created:
        assert isinstance(created, RedisStore)
        yield created


def test_the_claim_script_records_the_quarantine_in_the_partitions_slot(store: RedisStore) -> None:
    store.upsert(record("a", partition=3), T0)
    prefix = partition_prefix(store.namespace, "t", 3)
    client = store._redis()
    client.hset(instance_key(prefix, "a"), "n", "soon")

    batch = store.claim("t", 3, T0, 10, LEASE, "b1")

    assert [q.key for q in batch.quarantined] == [InstanceKey("t", 3, "a")]
    since, reason = json.loads(client.hget(quarantine_key(prefix), "a"))
    assert int(since) == 1_893_499_200_000_000  # T0 in epoch microseconds
    assert reason == "next_run (n) is not an integer: soon"
    assert client.zscore(prefix + b":ready", "a") is None
    assert client.zscore(prefix + b":names", "a") == 0  # still listed by name
    members = client.smembers(quarantine_index_key(store.namespace))
    assert members == {json.dumps(["t", 3]).encode()}


def test_an_unlock_meeting_a_garbage_next_run_unlocks_the_batch_and_the_claim_quarantines_it(
    store: RedisStore,
) -> None:
    store.upsert(record("a"), T0)
    store.upsert(record("b"), T0)
    a, b = store.claim_due("t", 0, T0, 10, LEASE, "b1")
    prefix = partition_prefix(store.namespace, "t", 0)
    store._redis().hset(instance_key(prefix, "a"), "n", "soon")  # ZADD refuses it

    assert store.unlock_many([(a.key, a.lease or ""), (b.key, b.lease or "")]) == []

    batch = store.claim("t", 0, T0, 10, LEASE, "b2")
    assert [r.key.instance for r in batch.records] == ["b"]
    assert [q.key.instance for q in batch.quarantined] == ["a"]


def test_an_upsert_over_a_garbage_lock_expiry_repairs_it(store: RedisStore) -> None:
    store.upsert(record("a"), T0)
    prefix = partition_prefix(store.namespace, "t", 0)
    store._redis().hset(instance_key(prefix, "a"), "u", "nan")

    store.upsert(record("a"), T0)  # neither refused as locked nor failing

    got = store.get(InstanceKey("t", 0, "a"))
    assert got is not None
    assert got.locked_until is None
