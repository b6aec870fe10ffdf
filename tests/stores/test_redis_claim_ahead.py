"""The Redis store's batches claimed ahead (stores/redis/_ahead.py): each batch's claim is sent
before the previous batch is handed over. What the contract suite cannot see from outside."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis
from celery import Celery

from celery_pyncette import Context, Pyncette
from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.redis import RedisStore
from tests.backends import redis as local
from tests.conftest import FakeClock
from tests.support.dispatching import dispatch_stopping_after
from tests.support.servers.local_redis import RedisServer, delete_namespace, private_server

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def fill(store: RedisStore, count: int) -> None:
    store.upsert_many(
        [
            InstanceRecord(InstanceKey("t", 0, f"i{n:04d}"), T0, {"cron": "* * * * *"}, {"n": n})
            for n in range(count)
        ],
        T0,
    )


def names(batches: list[list[InstanceRecord]]) -> list[str]:
    return [r.key.instance for records in batches for r in records]


@pytest.fixture
def store() -> Iterator[RedisStore]:
    with local.make_store(f"t{uuid.uuid4().hex[:10]}") as made:
        assert isinstance(made, RedisStore)
        yield made


def test_the_next_claim_has_run_before_the_current_batch_is_handed_over(
    store: RedisStore,
) -> None:
    fill(store, 300)
    batches = store.claim_batches("t", 0, lambda: T0, 100, LEASE, "b1", max_batches=10)

    first = next(batches)
    try:
        # The second batch is already leased, though only the first was handed over.
        assert store.count_instances("t", 0) == 300
        leased = [r for r in store.list_instances("t", 0, 1000) if r.lease]
        assert len(first.records) == 100
        assert len(leased) == 200
    finally:
        batches.close()


def test_a_batch_left_short_by_another_claimer_is_completed(store: RedisStore) -> None:
    fill(store, 600)
    batches = store.claim_batches("t", 0, lambda: T0, 100, LEASE, "b1", max_batches=20)
    mine = [next(batches).records]

    # Another beat takes the oldest claimable instances: candidates this stream read already.
    theirs = store.claim_due("t", 0, T0, 50, LEASE, "b2")
    mine += [batch.records for batch in batches]

    assert [len(records) for records in mine] == [100, 100, 100, 100, 100, 50]
    assert len(theirs) == 50
    assert sorted(names(mine) + [r.key.instance for r in theirs]) == [
        f"i{n:04d}" for n in range(600)
    ]


def test_claims_go_on_after_the_scripts_are_flushed_mid_stream(store: RedisStore) -> None:
    fill(store, 400)
    admin = redis.Redis.from_url(local.URL)
    batches = store.claim_batches("t", 0, lambda: T0, 100, LEASE, "b1", max_batches=10)
    try:
        got = [next(batches).records]
        admin.script_flush()
        got += [batch.records for batch in batches]
    finally:
        admin.close()

    assert [len(records) for records in got] == [100, 100, 100, 100, 0]
    assert sorted(names(got)) == [f"i{n:04d}" for n in range(400)]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server("--appendonly", "yes", "--appendfsync", "always") as started:
        yield started


def test_a_server_lost_mid_stream_is_a_store_error_and_the_store_recovers(
    server: RedisServer,
) -> None:
    store = RedisStore(server.url, namespace="app")
    try:
        fill(store, 300)
        batches = store.claim_batches("t", 0, lambda: T0, 100, LEASE, "b1", max_batches=10)
        first = next(batches)

        server.kill()
        with pytest.raises(StoreError) as caught:
            next(batches)
        server.start()

        assert isinstance(caught.value.__cause__, redis.ConnectionError)
        # No connection of the pool is left with a reply nobody read.
        for _ in range(5):
            assert store.get(InstanceKey("t", 0, "i0299")) is not None
        later = T0 + LEASE + timedelta(seconds=1)
        retaken = store.claim_due("t", 0, later, 1000, LEASE, "b2")
        assert len(first.records) == 100
        assert len(retaken) == 300, "what the lost stream held is claimable after its lease"
    finally:
        store.close()


def test_a_shutdown_mid_drain_unlocks_the_batch_claimed_ahead(
    fake_clock: FakeClock, app: Celery
) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    pyncette = Pyncette(app, url=local.URL, namespace=namespace, batch_size=10)

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    try:
        pyncette.schedule_tasks(
            hello, {f"i{n:03d}": {} for n in range(50)}, interval=timedelta(seconds=1)
        )
        fake_clock.advance(seconds=1)

        assert dispatch_stopping_after(pyncette, 2) == 2
        leased = [r for r in pyncette.store.list_instances("hello", 0, 100) if r.lease]
        assert len(leased) == 20, "the third batch, claimed ahead, was unlocked"
    finally:
        pyncette.close()
        cleaner = redis.Redis.from_url(local.URL)
        delete_namespace(cleaner, namespace)
        cleaner.close()
