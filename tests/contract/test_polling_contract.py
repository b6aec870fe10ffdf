"""Batched polling and the store clock, on every store.

``due_partitions`` names *exactly* the task partitions that hold a claimable instance.
``server_time`` is the server's clock where the store has one, ``None`` where it has none. What
one poll costs (one statement, one pipeline, one burst of queries) is each store's own:
``tests/stores/test_store_polling.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest

from celery_pyncette import _clock as clock
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store
from tests.backends import all_backends

pytestmark = pytest.mark.timeout(90)

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
HOUR = timedelta(hours=1)

CLOCKLESS = ["memory", "sqlite", "dynamodb"]


def on(backends: list[ModuleType]) -> Any:
    """Run the test on these backends only (the ``store`` fixture follows ``backend``)."""
    return pytest.mark.parametrize("backend", backends, ids=[b.NAME for b in backends])


def record(name: str, partition: int, next_run: datetime = T0, task: str = "t") -> InstanceRecord:
    return InstanceRecord(InstanceKey(task, partition, name), next_run, {"interval": 60}, {})


# --- exact answers --------------------------------------------------------------------------------


def test_due_partitions_names_exactly_the_groups_with_a_claimable_instance(store: Store) -> None:
    store.upsert(record("due", 1), T0)
    store.upsert(record("later", 2, T0 + HOUR), T0)
    store.upsert(record("long-lease", 3), T0)
    store.claim_due("t", 3, T0, 10, timedelta(days=1), "b1")
    store.upsert(record("short-lease", 4), T0)
    store.claim_due("t", 4, T0, 10, LEASE, "b1")
    store.upsert(record("committed", 5), T0)
    (ran,) = store.claim_due("t", 5, T0, 10, LEASE, "b1")
    store.commit(ran.key, ran.lease or "", T0 + HOUR, T0)
    store.upsert(record("not-asked", 1, task="u"), T0)
    groups = [("t", p) for p in range(7)] + [("t", 1), ("u", 0)]

    while_leased = store.due_partitions(groups, T0 + LEASE / 2)
    after_lease = store.due_partitions(groups, T0 + LEASE * 2)
    in_an_hour = store.due_partitions(groups, T0 + HOUR)

    assert while_leased == {("t", 1)}
    assert after_lease == {("t", 1), ("t", 4)}
    assert in_an_hour == {("t", 1), ("t", 2), ("t", 4), ("t", 5)}
    assert store.due_partitions([], T0 + HOUR) == set()


def test_due_partitions_is_exact_over_hundreds_of_groups(store: Store) -> None:
    # More groups than one SQL statement probes (500): the answer spans the chunks.
    due = {("t", p) for p in (0, 7, 499, 500, 501, 777)}
    store.upsert_many([record(f"i{p}", p) for _, p in due], T0)
    store.upsert_many([record(f"later{p}", p, T0 + HOUR) for p in range(0, 800, 50)], T0)

    found = store.due_partitions([("t", p) for p in range(800)], T0)

    assert found == due


# --- the store's clock ----------------------------------------------------------------------------


@on([b for b in all_backends() if b.NAME not in CLOCKLESS])
def test_server_time_is_the_servers_clock_as_aware_utc_with_microseconds(store: Store) -> None:
    before = clock.utcnow()
    readings = [store.server_time() for _ in range(5)]
    after = clock.utcnow()

    assert all(r is not None and r.utcoffset() == timedelta(0) for r in readings)
    times = [r for r in readings if r is not None]
    # The servers run on this machine: their clock is ours, give or take a little.
    assert before - timedelta(seconds=1) <= times[0] <= times[-1] <= after + timedelta(seconds=1)
    assert times == sorted(times)
    assert len(set(times)) == len(times), "a clock frozen per transaction (now()), not the server's"
    assert any(t.microsecond % 1000 for t in times), "no sub-millisecond precision"


@on([b for b in all_backends() if b.NAME in CLOCKLESS])
def test_stores_without_a_clock_of_their_own_offer_none(store: Store) -> None:
    assert store.server_time() is None


# --- the earliest ready time (what a simulation ticks at) ----------------------------------------


def test_earliest_ready_is_the_earliest_next_run_or_live_lease_expiry_of_the_groups(
    store: Store,
) -> None:
    assert store.earliest_ready([("t", 0), ("t", 1)]) is None
    store.upsert(record("later", 1, T0 + 2 * HOUR), T0)
    store.upsert(record("elsewhere", 7, T0 - HOUR), T0)  # not a group asked about
    store.upsert(record("other task", 1, T0 - HOUR, task="u"), T0)
    assert store.earliest_ready([("t", 0), ("t", 1)]) == T0 + 2 * HOUR

    store.upsert(record("leased", 0, T0), T0)
    store.claim_due("t", 0, T0, 10, LEASE, "b1")  # ready again when its lease expires
    assert store.earliest_ready([("t", 0), ("t", 1)]) == T0 + LEASE

    store.upsert(record("due", 1, T0 + timedelta(seconds=5)), T0)
    assert store.earliest_ready([("t", 0), ("t", 1)]) == T0 + timedelta(seconds=5)
    assert store.earliest_ready([("t", 7)]) == T0 - HOUR
