"""The store contract's run history and count of settled runs (issue #18), over every store:
both are written by the commit that settles the run."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from celery_pyncette.errors import LeaseLostError
from celery_pyncette.stores._history import FINISHED, Run
from celery_pyncette.stores.base import STATIC_INSTANCE, ClaimedRecord, Commit, RunLog, Store
from tests.contract.test_store_contract import LEASE, T0, key, record


def claim(store: Store, now: datetime) -> list[ClaimedRecord]:
    return store.claim_due("t", 0, now, 100, LEASE, "b1")


def run(n: int, status: str = "success", error: str | None = None) -> Run:
    at = T0 + timedelta(minutes=n)
    return Run(at, at + timedelta(seconds=1), at + timedelta(seconds=2), status, "host-1", error)


def settle(store: Store, n: int, status: str = "success", size: int = 3, **extra: object) -> None:
    """Claim instance "a" and commit run ``n`` of it."""
    now = T0 + timedelta(minutes=n)
    (got,) = claim(store, now)
    store.commit(
        got.key,
        got.lease,
        now + timedelta(minutes=1),
        now,
        status,  # type: ignore[arg-type]
        run=run(n, status, "ValueError: bad" if status == "failed" else None),
        history_size=size,
        **extra,  # type: ignore[arg-type]
    )


def test_history_is_newest_first_and_trimmed_to_its_size(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    for n, status in enumerate(["success", "failed", "struck", "missed", "expired"]):
        settle(store, n, status)

    log = store.run_log(key("a"), 10)

    assert log.count == 5
    assert log.runs == [run(4, "expired"), run(3, "missed"), run(2, "struck")]
    assert store.run_log(key("a"), 1).runs == [run(4, "expired")]
    record_now = store.get(key("a"))
    assert record_now is not None
    assert record_now.last_status == "expired"


def test_a_failed_run_keeps_its_error_and_every_field(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    settle(store, 0, "failed")
    (entry,) = store.run_log(key("a"), 5).runs
    assert entry == run(0, "failed", "ValueError: bad")
    assert entry.error == "ValueError: bad"
    assert entry.worker == "host-1"


def test_history_size_zero_writes_none_but_counts_the_run(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    settle(store, 0, size=0)
    settle(store, 1, size=0)
    assert store.run_log(key("a"), 5) == RunLog(2, [])


def test_upsert_keeps_the_history_and_delete_drops_it(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    settle(store, 0)
    store.upsert(record("a", T0 + timedelta(hours=1)), T0)
    assert store.run_log(key("a"), 5) == RunLog(1, [run(0)])
    assert store.delete(key("a"))
    assert store.run_log(key("a"), 5) == RunLog(0, [])


def test_a_lost_lease_writes_no_history(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    claim(store, T0)
    with pytest.raises(LeaseLostError):
        store.commit(key("a"), "stale", T0 + timedelta(minutes=1), T0, run=run(0), history_size=3)
    assert store.run_log(key("a"), 5) == RunLog(0, [])


def test_max_runs_deletes_a_dynamic_instance_at_its_last_run(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    settle(store, 0, max_runs=2)
    assert store.get(key("a")) is not None
    settle(store, 1, max_runs=2)
    assert store.get(key("a")) is None
    assert claim(store, T0 + timedelta(days=1)) == []


def test_max_runs_keeps_a_static_record_without_a_next_run(store: Store) -> None:
    static = key(STATIC_INSTANCE)
    store.upsert(record(STATIC_INSTANCE, T0), T0)
    (got,) = claim(store, T0)
    store.commit(static, got.lease, T0 + timedelta(minutes=1), T0, run=run(0), max_runs=1)
    kept = store.get(static)
    assert kept is not None
    assert kept.next_run == FINISHED
    assert kept.lease is None
    assert store.run_log(static, 5).count == 1
    assert claim(store, T0 + timedelta(days=365)) == []


def test_commit_many_writes_each_history_and_count(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    store.upsert(record("b", T0), T0)
    a, b = claim(store, T0)
    later = T0 + timedelta(minutes=1)
    lost = store.commit_many(
        [
            Commit(a.key, a.lease, later, "sent", run(0, "sent"), 5),
            Commit(b.key, b.lease, later, "struck", run(1, "struck"), 5, max_runs=1),
        ],
        T0,
    )
    assert lost == []
    assert store.run_log(a.key, 5) == RunLog(1, [run(0, "sent")])
    assert store.get(b.key) is None


@pytest.mark.parametrize(("size", "max_runs"), [(-1, None), (3, 0), (3, -2), (3, True)])
def test_bad_history_size_or_max_runs_writes_nothing(
    store: Store, size: int, max_runs: int | None
) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)
    with pytest.raises(ValueError, match=r"history_size|max_runs"):
        store.commit(got.key, got.lease, T0, T0, run=run(0), history_size=size, max_runs=max_runs)
    with pytest.raises(ValueError, match=r"history_size|max_runs"):
        store.commit_many([Commit(got.key, got.lease, T0, "success", run(0), size, max_runs)], T0)
    state = store.get(got.key)
    assert state is not None
    assert state.lease == got.lease
    assert store.run_log(got.key, 5) == RunLog(0, [])


def test_unlock_adds_a_history_entry_without_counting_the_run(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    settle(store, 0)
    (got,) = claim(store, T0 + timedelta(minutes=1))
    failed = run(1, "failed", "ValueError: again")

    store.unlock(got.key, got.lease, run=failed, history_size=3)

    assert store.run_log(key("a"), 5) == RunLog(1, [failed, run(0)])
    state = store.get(key("a"))
    assert state is not None
    assert state.lease is None
    assert state.next_run == T0 + timedelta(minutes=1)
    assert len(claim(store, T0 + timedelta(minutes=1))) == 1  # due again at once


def test_an_unlock_with_a_stale_lease_writes_no_history(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    claim(store, T0)
    with pytest.raises(LeaseLostError):
        store.unlock(key("a"), "stale", run=run(0, "failed"), history_size=3)
    assert store.run_log(key("a"), 5) == RunLog(0, [])
    with pytest.raises(ValueError, match="history_size"):
        store.unlock(key("a"), "stale", run=run(0, "failed"), history_size=-1)


def test_record_run_adds_an_entry_and_leaves_the_lease_next_run_and_count(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    settle(store, 0)
    (got,) = claim(store, T0 + timedelta(minutes=2))
    before = store.get(key("a"))

    assert store.record_run(key("a"), run(1, "failed", "ValueError: bad"), 3)

    assert store.get(key("a")) == before
    assert store.lease_of(key("a")) == got.lease
    assert store.run_log(key("a"), 5) == RunLog(1, [run(1, "failed", "ValueError: bad"), run(0)])
    store.commit(got.key, got.lease, T0 + timedelta(minutes=3), T0, run=run(2), history_size=3)
    assert store.run_log(key("a"), 5).count == 2


def test_record_run_keeps_the_history_to_its_size(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    for n in range(4):
        assert store.record_run(key("a"), run(n, "lease_lost"), 2)
    assert store.run_log(key("a"), 5) == RunLog(0, [run(3, "lease_lost"), run(2, "lease_lost")])


def test_record_run_on_a_missing_instance_writes_nothing(store: Store) -> None:
    assert not store.record_run(key("gone"), run(0, "failed"), 3)
    assert store.run_log(key("gone"), 5) == RunLog(0, [])
    assert store.get(key("gone")) is None


def test_record_run_with_size_zero_writes_nothing(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    assert not store.record_run(key("a"), run(0, "failed"), 0)
    assert store.run_log(key("a"), 5) == RunLog(0, [])
    with pytest.raises(ValueError, match="history_size"):
        store.record_run(key("a"), run(0, "failed"), -1)
