"""SQL store under concurrency: claimers in separate processes, racing upserts."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import ModuleType
from typing import Any

from celery_pyncette.stores.base import Commit
from celery_pyncette.stores.sql import SQLStore
from tests.stores.test_sql_store import SQL_BACKENDS, T0, key, on, record, seed, sql_store

INSTANCES = 2000
BATCH = 2
HOUR = timedelta(hours=1)


def _claim_until_none_due(url: str, namespace: str, owner: str, start: Any, out: Any) -> None:
    """In a child process: claim in small batches until nothing is due at T0, then commit all.

    The lease (an hour) outlives the test, so an instance claimed twice would be a duplicate.
    """
    claims: list[tuple[str, str]] = []
    error: str | None = None
    store = SQLStore(url, namespace=namespace)
    try:
        start.wait(60)
        while batch := store.claim_due("t", 0, T0, BATCH, HOUR, owner):
            claims.extend((r.key.instance, r.lease or "") for r in batch)
            # A beat publishes between claims. Without any pause, SQLite's busy handler (which
            # sleeps between retries) can leave the other process waiting until none are left.
            time.sleep(0.0005)
        commits = [Commit(key(name), lease, T0 + HOUR) for name, lease in claims]
        if lost := store.commit_many(commits, T0):
            raise AssertionError(f"{owner} lost leases no one else may take: {lost[:5]}")
    except BaseException as exc:  # reported to the parent
        error = repr(exc)
    finally:
        store.close()
        out.put((owner, claims, error))


@on(SQL_BACKENDS)
def test_claimers_in_separate_processes_never_share_an_instance(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        names = seed(store, INSTANCES)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        children = [
            ctx.Process(
                target=_claim_until_none_due, args=(store.url, store.namespace, owner, start, out)
            )
            for owner in ("p1", "p2")
        ]
        for child in children:
            child.start()
        start.set()
        try:
            results = [out.get(timeout=90) for _ in children]
        finally:
            for child in children:
                child.join(30)
                if child.is_alive():  # pragma: no cover - only when the test already failed
                    child.kill()

        assert [error for _, _, error in results] == [None, None]
        claimed = Counter(name for _, claims, _ in results for name, _ in claims)
        assert sorted(claimed) == names
        assert max(claimed.values()) == 1
        leases = [lease for _, claims, _ in results for _, lease in claims]
        assert len(set(leases)) == INSTANCES
        assert all(claims for _, claims, _ in results), "both processes should have claimed"
        assert store.claim_due("t", 0, T0, 10, HOUR, "after") == []
        assert len(store.claim_due("t", 0, T0 + HOUR, INSTANCES, HOUR, "after")) == INSTANCES


@on(SQL_BACKENDS)
def test_concurrent_upserts_of_the_same_new_instance_never_conflict(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        other = SQLStore(store.url, namespace=store.namespace)
        errors: list[BaseException] = []

        def write(client: SQLStore, name: str, value: int, barrier: threading.Barrier) -> None:
            try:
                barrier.wait(10)
                client.upsert(record(name, v=value), T0)
            except BaseException as exc:  # reported below
                errors.append(exc)

        try:
            with ThreadPoolExecutor(2) as pool:
                for pair in range(50):
                    barrier = threading.Barrier(2)
                    name = f"new{pair:02d}"
                    racing = [
                        pool.submit(write, client, name, value, barrier)
                        for value, client in enumerate((store, other))
                    ]
                    for future in racing:
                        future.result(30)
        finally:
            other.close()

        assert errors == []
        assert store.count_instances("t", 0) == 50
        for state in store.list_instances("t", 0, 100):
            assert state.args["v"] in (0, 1)
            assert state.lease is None


@on(SQL_BACKENDS)
def test_concurrent_batches_upserting_the_same_instances_all_succeed(backend: ModuleType) -> None:
    with sql_store(backend) as store:
        other = SQLStore(store.url, namespace=store.namespace)
        batch = [record(f"shared{n:03d}", v=n) for n in range(300)]
        try:
            with ThreadPoolExecutor(2) as pool:
                for _ in range(3):
                    futures = [
                        pool.submit(store.upsert_many, batch, T0),
                        pool.submit(other.upsert_many, batch[::-1], T0),
                    ]
                    assert [future.result(60) for future in futures] == [[], []]
        finally:
            other.close()

        assert store.count_instances("t", 0) == 300
