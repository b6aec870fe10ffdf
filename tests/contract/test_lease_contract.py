"""The lease contract (``Store.extend_lease`` with ``new_lease``, ``Store.extend_leases``), run over
every store.

A worker swaps the lease token when its execution starts, so that a second delivery of the same
message (which carries the old token) finds the lease lost; beat extends the leases of a whole
published batch in one call, so that an occurrence waiting in the broker is not claimed again.
Time is driven through the ``now`` arguments: no test sleeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette._ids import lease_tokens
from celery_pyncette.errors import LeaseLostError
from celery_pyncette.stores.base import ClaimedRecord, InstanceKey, InstanceRecord, LeaseRef, Store

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
HOUR = timedelta(hours=1)


def key(name: str, partition: int = 0) -> InstanceKey:
    return InstanceKey("t", partition, name)


def record(name: str, next_run: datetime = T0, partition: int = 0) -> InstanceRecord:
    return InstanceRecord(
        key=key(name, partition), next_run=next_run, spec={"cron": "* * * * *", "timezone": None}
    )


def claim_one(store: Store, name: str, now: datetime = T0, partition: int = 0) -> InstanceRecord:
    store.upsert(record(name, partition=partition), now)
    (got,) = store.claim_due("t", partition, now, 10, LEASE, "beat")
    assert got.key == key(name, partition)
    return got


def claimable(store: Store, now: datetime, partition: int = 0) -> list[str]:
    """Names claimable at ``now`` (claims them)."""
    return sorted(r.key.instance for r in store.claim_due("t", partition, now, 500, LEASE, "b2"))


# --- extend_lease(new_lease=): the worker's token swap ------------------------------------------


def test_a_swapped_lease_holds_under_the_new_token_only(store: Store) -> None:
    got = claim_one(store, "a")
    old = got.lease or ""
    (new,) = lease_tokens(1)

    store.extend_lease(got.key, old, T0 + LEASE * 2, new_lease=new)

    stored = store.get(got.key)
    assert stored is not None
    assert stored.lease == new
    assert stored.locked_until == T0 + LEASE * 2
    assert store.lease_of(got.key) == new
    with pytest.raises(LeaseLostError):
        store.extend_lease(got.key, old, T0 + LEASE * 3)
    with pytest.raises(LeaseLostError):
        store.extend_lease(got.key, old, T0 + LEASE * 3, new_lease=lease_tokens(1)[0])
    with pytest.raises(LeaseLostError):
        store.unlock(got.key, old)
    with pytest.raises(LeaseLostError):
        store.commit(got.key, old, T0 + HOUR, T0)
    store.extend_lease(got.key, new, T0 + LEASE * 3)
    store.commit(got.key, new, T0 + HOUR, T0 + LEASE)
    after = store.get(got.key)
    assert after is not None
    assert (after.lease, after.next_run, after.last_status) == (None, T0 + HOUR, "success")


def test_a_swapped_lease_can_be_unlocked_with_the_new_token(store: Store) -> None:
    got = claim_one(store, "a")
    (new,) = lease_tokens(1)
    store.extend_lease(got.key, got.lease or "", T0 + LEASE, new_lease=new)

    store.unlock(got.key, new)

    assert claimable(store, T0) == ["a"]


def test_a_swap_of_a_lost_lease_changes_nothing(store: Store) -> None:
    got = claim_one(store, "a")
    (retaken,) = store.claim_due("t", 0, T0 + LEASE, 10, LEASE, "b2")

    with pytest.raises(LeaseLostError):
        store.extend_lease(got.key, got.lease or "", T0 + HOUR, new_lease=lease_tokens(1)[0])

    stored = store.get(got.key)
    assert stored is not None
    assert (stored.lease, stored.locked_until) == (retaken.lease, T0 + LEASE * 2)


def test_a_swap_of_a_deleted_instance_raises(store: Store) -> None:
    got = claim_one(store, "a")
    store.delete(got.key)

    with pytest.raises(LeaseLostError):
        store.extend_lease(got.key, got.lease or "", T0 + HOUR, new_lease=lease_tokens(1)[0])
    assert store.get(got.key) is None


def test_an_expired_lease_not_claimed_again_can_still_be_swapped(store: Store) -> None:
    got = claim_one(store, "a")
    (new,) = lease_tokens(1)

    store.extend_lease(got.key, got.lease or "", T0 + LEASE * 3, new_lease=new)

    assert claimable(store, T0 + LEASE * 2) == []
    assert claimable(store, T0 + LEASE * 3) == ["a"]


# --- extend_lease to an earlier time ------------------------------------------------------------


def test_a_lease_extended_to_an_earlier_time_expires_then(store: Store) -> None:
    got = claim_one(store, "a")
    lease = got.lease or ""
    store.extend_lease(got.key, lease, T0 + HOUR)

    store.extend_lease(got.key, lease, T0 + LEASE, new_lease=lease_tokens(1)[0])

    stored = store.get(got.key)
    assert stored is not None
    assert stored.locked_until == T0 + LEASE
    assert claimable(store, T0 + LEASE - timedelta(microseconds=1)) == []
    assert claimable(store, T0 + LEASE) == ["a"]


def test_a_lease_shortened_below_the_next_run_leaves_it_due_at_its_next_run(
    store: Store,
) -> None:
    store.upsert(record("a", next_run=T0), T0)
    (got,) = store.claim_due("t", 0, T0, 10, LEASE, "beat")
    store.extend_lease(got.key, got.lease or "", T0 + HOUR)

    store.extend_lease(got.key, got.lease or "", T0 - timedelta(seconds=5))

    assert claimable(store, T0 - timedelta(seconds=1)) == []
    assert claimable(store, T0) == ["a"]


# --- extend_leases: a published batch -----------------------------------------------------------


def test_extend_leases_returns_exactly_the_lost_keys(store: Store) -> None:
    held = [claim_one(store, f"held{i}") for i in range(3)]
    other_partition = claim_one(store, "held-p1", partition=1)
    wrong = claim_one(store, "wrong")
    deleted = claim_one(store, "deleted")
    store.delete(deleted.key)
    swapped = claim_one(store, "swapped")
    store.extend_lease(swapped.key, swapped.lease or "", T0 + LEASE, new_lease=lease_tokens(1)[0])
    never = key("never-stored")

    items = [
        (held[0].key, held[0].lease or ""),
        (wrong.key, "not-its-lease"),
        (held[1].key, held[1].lease or ""),
        (deleted.key, deleted.lease or ""),
        (other_partition.key, other_partition.lease or ""),
        (swapped.key, swapped.lease or ""),
        (never, "no-lease"),
        (held[2].key, held[2].lease or ""),
    ]
    lost = store.extend_leases(items, T0 + HOUR)

    assert lost == [wrong.key, deleted.key, swapped.key, never]
    for got in [*held, other_partition]:
        stored = store.get(got.key)
        assert stored is not None
        assert (stored.lease, stored.locked_until) == (got.lease, T0 + HOUR)
    for untouched in (wrong, swapped):
        stored = store.get(untouched.key)
        assert stored is not None
        assert stored.locked_until == T0 + LEASE
    assert store.get(deleted.key) is None


def test_extend_leases_of_nothing_is_nothing(store: Store) -> None:
    assert store.extend_leases([], T0 + HOUR) == []


def test_extended_leases_are_not_claimable_until_they_expire(store: Store) -> None:
    names = [f"i{n:03d}" for n in range(120)]
    for name in names:
        store.upsert(record(name), T0)
    claimed = store.claim_due("t", 0, T0, 200, LEASE, "beat")
    assert len(claimed) == len(names)

    lost = store.extend_leases([(r.key, r.lease or "") for r in claimed], T0 + LEASE * 4)

    assert lost == []
    assert claimable(store, T0 + LEASE * 2) == []
    assert claimable(store, T0 + LEASE * 4) == names


def test_a_batch_extension_does_not_restore_a_lease_a_worker_took_over(store: Store) -> None:
    got = claim_one(store, "a")
    (mine,) = lease_tokens(1)
    store.extend_lease(got.key, got.lease or "", T0 + LEASE * 2, new_lease=mine)

    assert store.extend_leases([(got.key, got.lease or "")], T0 + HOUR) == [got.key]

    stored = store.get(got.key)
    assert stored is not None
    assert (stored.lease, stored.locked_until) == (mine, T0 + LEASE * 2)
    assert claimable(store, T0 + LEASE * 2) == ["a"]


def test_a_claim_returns_claimed_records_that_name_their_lease(store: Store) -> None:
    store.upsert(record("a"), T0)
    store.upsert(record("b"), T0)
    claimed = store.claim_due("t", 0, T0, 1, LEASE, "beat")
    (batch,) = list(store.claim_batches("t", 0, lambda: T0, 10, LEASE, "beat", 3))
    for got in [*claimed, *batch.records]:
        assert isinstance(got, ClaimedRecord)
        assert isinstance(got.lease, str)
        assert got.ref == LeaseRef(got.key, got.lease)
        assert got.ref == (got.key, got.lease)  # a plain pair, as the stores take it
        assert got == store.get(got.key)  # equal to the same record read back
    assert store.unlock_many([r.ref for r in [*claimed, *batch.records]]) == []
