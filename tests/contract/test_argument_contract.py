"""Every store refuses the same bad arguments with the same ValueError, before touching its data."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from celery_pyncette.stores.base import Commit, InstanceKey, InstanceRecord, Store

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
NAIVE = datetime(2030, 1, 1, 12, 0)
LEASE = timedelta(seconds=30)
KEY = InstanceKey("t", 0, "a")

BAD_LIMITS = [0, -1, True, 1.5, "10", None]
BAD_LEASES = [timedelta(0), timedelta(seconds=-1), 30, None]


def record(next_run: datetime = T0) -> InstanceRecord:
    return InstanceRecord(KEY, next_run, {"cron": "* * * * *"}, {})


def limit_error(limit: Any) -> str:
    return re.escape(f"limit must be a positive integer, got {limit!r}")


def lease_error(lease: Any) -> str:
    return re.escape(f"lease_duration must be a positive timedelta, got {lease!r}")


def naive_error(name: str) -> str:
    return re.escape(f"{name} {NAIVE!r} is naive: store times must be timezone-aware (UTC)")


@pytest.fixture
def seeded(store: Store) -> Store:
    store.upsert(record(), T0)
    return store


def assert_untouched(store: Store) -> None:
    """The instance the checks ran next to is still there, due and unleased."""
    state = store.get(KEY)
    assert state is not None
    assert state.lease is None
    assert state.next_run == T0


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_a_claim_refuses_a_limit_that_is_not_a_positive_integer(seeded: Store, limit: Any) -> None:
    with pytest.raises(ValueError, match=limit_error(limit)):
        seeded.claim_due("t", 0, T0, limit, LEASE, "b1")
    with pytest.raises(ValueError, match=limit_error(limit)):
        seeded.claim("t", 0, T0, limit, LEASE, "b1")
    with pytest.raises(ValueError, match=limit_error(limit)):
        seeded.claim_batches("t", 0, lambda: T0, limit, LEASE, "b1", 3)
    assert_untouched(seeded)


@pytest.mark.parametrize("lease", BAD_LEASES)
def test_a_claim_refuses_a_lease_that_is_not_positive(seeded: Store, lease: Any) -> None:
    with pytest.raises(ValueError, match=lease_error(lease)):
        seeded.claim_due("t", 0, T0, 10, lease, "b1")
    with pytest.raises(ValueError, match=lease_error(lease)):
        seeded.claim("t", 0, T0, 10, lease, "b1")
    with pytest.raises(ValueError, match=lease_error(lease)):
        seeded.claim_batches("t", 0, lambda: T0, 10, lease, "b1", 3)
    assert_untouched(seeded)


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_listing_refuses_a_limit_that_is_not_a_positive_integer(seeded: Store, limit: Any) -> None:
    with pytest.raises(ValueError, match=limit_error(limit)):
        seeded.list_instances("t", 0, limit)


def test_naive_times_are_refused_everywhere_a_store_takes_a_time(seeded: Store) -> None:
    with pytest.raises(ValueError, match=naive_error("now")):
        seeded.claim_due("t", 0, NAIVE, 10, LEASE, "b1")
    with pytest.raises(ValueError, match=naive_error("now")):
        seeded.due_partitions([("t", 0)], NAIVE)
    with pytest.raises(ValueError, match=naive_error("now")):
        seeded.upsert(record(), NAIVE)
    with pytest.raises(ValueError, match=naive_error("next_run")):
        seeded.upsert(record(NAIVE), T0, force=True)
    with pytest.raises(ValueError, match=naive_error("next_run")):
        seeded.upsert_many([record(NAIVE)], T0, force=True)
    with pytest.raises(ValueError, match=naive_error("now")):
        seeded.quarantine(KEY, None, "bad", NAIVE)
    assert_untouched(seeded)

    (claimed,) = seeded.claim_due("t", 0, T0, 10, LEASE, "b1")
    lease = claimed.lease
    assert lease is not None
    with pytest.raises(ValueError, match=naive_error("now")):
        seeded.commit(KEY, lease, T0 + LEASE, NAIVE)
    with pytest.raises(ValueError, match=naive_error("next_run")):
        seeded.commit(KEY, lease, NAIVE, T0)
    with pytest.raises(ValueError, match=naive_error("next_run")):
        seeded.commit_many([Commit(KEY, lease, NAIVE)], T0)
    with pytest.raises(ValueError, match=naive_error("until")):
        seeded.extend_lease(KEY, lease, NAIVE)
    with pytest.raises(ValueError, match=naive_error("until")):
        seeded.extend_leases([(KEY, lease)], NAIVE)
    state = seeded.get(KEY)
    assert state is not None
    assert state.lease == lease
    assert state.locked_until == T0 + LEASE
