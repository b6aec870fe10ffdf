"""The store contract (celery_pyncette.stores.base), run over every store.

Time is driven through the ``now`` argument: no test sleeps.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette.errors import LeaseLostError, TaskLockedError
from celery_pyncette.stores.base import (
    Commit,
    InstanceKey,
    InstanceRecord,
    Store,
    Strike,
)
from tests.support.claimers import claim_concurrently

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def key(name: str = "i1", task: str = "t", partition: int = 0) -> InstanceKey:
    return InstanceKey(task, partition, name)


def record(
    name: str = "i1", next_run: datetime = T0, task: str = "t", partition: int = 0, **args: object
) -> InstanceRecord:
    return InstanceRecord(
        key=key(name, task, partition),
        next_run=next_run,
        spec={"cron": "* * * * *", "timezone": None},
        args=dict(args),
    )


def claim(
    store: Store, now: datetime, limit: int = 100, task: str = "t", owner: str = "b1"
) -> list[InstanceRecord]:
    return store.claim_due(task, 0, now, limit, LEASE, owner)


# --- claims -------------------------------------------------------------------------------------


def test_claim_returns_due_instances_with_a_lease(store: Store) -> None:
    store.upsert(record("a", T0, user="x"), T0)
    store.upsert(record("b", T0 + timedelta(seconds=10)), T0)

    claimed = claim(store, T0)

    assert [r.key.instance for r in claimed] == ["a"]
    (got,) = claimed
    assert got.lease
    assert got.locked_until == T0 + LEASE
    assert got.locked_by == "b1"
    assert got.next_run == T0
    assert dict(got.args) == {"user": "x"}
    assert dict(got.spec) == {"cron": "* * * * *", "timezone": None}


def test_claim_takes_oldest_first_and_respects_limit(store: Store) -> None:
    for i in range(5):
        store.upsert(record(f"i{i}", T0 - timedelta(seconds=5 - i)), T0)

    first = claim(store, T0, limit=2)
    second = claim(store, T0, limit=10)

    assert [r.key.instance for r in first] == ["i0", "i1"]
    assert [r.key.instance for r in second] == ["i2", "i3", "i4"]


def test_claim_is_scoped_to_task_and_partition(store: Store) -> None:
    store.upsert(record("a", T0, task="t"), T0)
    store.upsert(record("a", T0, task="u"), T0)
    store.upsert(record("a", T0, task="t", partition=1), T0)

    claimed = store.claim_due("t", 1, T0, 10, LEASE, "b1")

    assert [r.key for r in claimed] == [key("a", "t", 1)]


def test_a_leased_instance_is_not_claimed_again_while_the_lease_is_valid(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    claim(store, T0)

    assert claim(store, T0 + LEASE - timedelta(milliseconds=1), owner="b2") == []


def test_an_expired_lease_is_claimed_again_with_a_new_token(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (first,) = claim(store, T0)

    (second,) = claim(store, T0 + LEASE + timedelta(seconds=1), owner="b2")

    assert second.lease != first.lease
    assert second.locked_by == "b2"
    assert second.next_run == T0
    with pytest.raises(LeaseLostError):
        store.commit(first.key, first.lease or "", T0 + timedelta(minutes=1), T0)


def test_times_keep_sub_second_precision(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    store.upsert(record("b", T0 + timedelta(microseconds=1000)), T0)

    claimed = claim(store, T0)

    assert [r.key.instance for r in claimed] == ["a"]
    assert claimed[0].next_run == T0


def test_concurrent_claimers_never_get_the_same_instance(store: Store) -> None:
    for i in range(300):
        store.upsert(record(f"i{i:03d}", T0), T0)

    def claim_all(slot: int) -> list[InstanceRecord]:
        taken: list[InstanceRecord] = []
        while batch := store.claim_due("t", 0, T0, 7, LEASE, f"b{slot}"):
            taken.extend(batch)
        return taken

    counts = claim_concurrently(claim_all)

    assert len(counts) == 300
    assert max(counts.values()) == 1


# --- commit, unlock, extend ---------------------------------------------------------------------


def test_commit_sets_next_run_releases_lock_and_records_the_run(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)
    later = T0 + timedelta(seconds=3)

    store.commit(got.key, got.lease or "", T0 + timedelta(minutes=1), later, "failed")

    state = store.get(got.key)
    assert state is not None
    assert state.next_run == T0 + timedelta(minutes=1)
    assert state.locked_until is None
    assert state.lease is None
    assert state.last_run_at == later
    assert state.last_status == "failed"
    assert claim(store, T0 + timedelta(seconds=59)) == []
    assert len(claim(store, T0 + timedelta(minutes=1))) == 1


def test_commit_with_a_stale_lease_raises_and_changes_nothing(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)

    with pytest.raises(LeaseLostError):
        store.commit(got.key, "not-the-lease", T0 + timedelta(minutes=1), T0)

    state = store.get(got.key)
    assert state is not None
    assert state.lease == got.lease
    assert state.next_run == T0


def test_commit_of_a_missing_instance_raises(store: Store) -> None:
    with pytest.raises(LeaseLostError):
        store.commit(key("ghost"), "lease", T0, T0)


def test_commit_without_next_run_deletes_a_once_off_instance(store: Store) -> None:
    store.upsert(record("once", T0), T0)
    (got,) = claim(store, T0)

    store.commit(got.key, got.lease or "", None, T0)

    assert store.get(got.key) is None


def test_commit_many_reports_lost_leases_and_commits_the_rest(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    store.upsert(record("b", T0), T0)
    a, b = claim(store, T0)

    lost = store.commit_many(
        [
            Commit(a.key, a.lease or "", T0 + timedelta(minutes=1)),
            Commit(b.key, "stale", T0 + timedelta(minutes=1)),
        ],
        T0,
    )

    assert lost == [b.key]
    state_a = store.get(a.key)
    assert state_a is not None
    assert state_a.next_run == T0 + timedelta(minutes=1)
    state_b = store.get(b.key)
    assert state_b is not None
    assert state_b.lease == b.lease


def test_unlock_makes_a_due_instance_claimable_at_once(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)

    store.unlock(got.key, got.lease or "")

    (again,) = claim(store, T0 + timedelta(milliseconds=1), owner="b2")
    assert again.next_run == T0
    assert again.lease != got.lease


def test_unlock_with_a_stale_lease_raises(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    claim(store, T0)

    with pytest.raises(LeaseLostError):
        store.unlock(key("a"), "stale")


def test_unlock_many_reports_lost_leases(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    store.upsert(record("b", T0), T0)
    a, b = claim(store, T0)

    lost = store.unlock_many([(a.key, a.lease or ""), (b.key, "stale")])

    assert lost == [b.key]
    assert [r.key for r in claim(store, T0, owner="b2")] == [a.key]


def test_extend_lease_keeps_the_instance_locked_until_the_new_expiry(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)

    store.extend_lease(got.key, got.lease or "", T0 + LEASE * 3)

    assert claim(store, T0 + LEASE * 2, owner="b2") == []
    state = store.get(got.key)
    assert state is not None
    assert state.locked_until == T0 + LEASE * 3
    assert len(claim(store, T0 + LEASE * 3, owner="b2")) == 1


def test_extend_lease_after_the_lease_was_taken_raises(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)
    claim(store, T0 + LEASE * 2, owner="b2")

    with pytest.raises(LeaseLostError):
        store.extend_lease(got.key, got.lease or "", T0 + LEASE * 4)


def test_extend_lease_of_a_deleted_instance_raises(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)
    store.delete(got.key)

    with pytest.raises(LeaseLostError):
        store.extend_lease(got.key, got.lease or "", T0 + LEASE * 2)


# --- upsert, get, delete ------------------------------------------------------------------------


def test_upsert_creates_and_replaces(store: Store) -> None:
    store.upsert(record("a", T0, user="x"), T0)
    store.upsert(record("a", T0 + timedelta(hours=1), user="y"), T0)

    state = store.get(key("a"))
    assert state is not None
    assert dict(state.args) == {"user": "y"}
    assert state.next_run == T0 + timedelta(hours=1)


def test_upsert_of_a_locked_instance_without_force_raises_and_changes_nothing(store: Store) -> None:
    store.upsert(record("a", T0, user="x"), T0)
    (got,) = claim(store, T0)

    with pytest.raises(TaskLockedError):
        store.upsert(record("a", T0 + timedelta(hours=1), user="y"), T0)

    state = store.get(got.key)
    assert state is not None
    assert dict(state.args) == {"user": "x"}
    assert state.lease == got.lease


def test_upsert_with_force_replaces_a_locked_instance_and_voids_its_lease(store: Store) -> None:
    store.upsert(record("a", T0, user="x"), T0)
    (got,) = claim(store, T0)

    store.upsert(record("a", T0 + timedelta(hours=1), user="y"), T0, force=True)

    state = store.get(got.key)
    assert state is not None
    assert dict(state.args) == {"user": "y"}
    assert state.locked_until is None
    with pytest.raises(LeaseLostError):
        store.commit(got.key, got.lease or "", T0 + timedelta(hours=2), T0)


def test_upsert_after_an_expired_lease_needs_no_force(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    claim(store, T0)

    store.upsert(record("a", T0 + timedelta(hours=1)), T0 + LEASE * 2)

    state = store.get(key("a"))
    assert state is not None
    assert state.next_run == T0 + timedelta(hours=1)


def test_upsert_keeps_last_run_of_an_existing_instance(store: Store) -> None:
    store.upsert(record("a", T0), T0)
    (got,) = claim(store, T0)
    store.commit(got.key, got.lease or "", T0 + timedelta(minutes=1), T0, "success")

    store.upsert(record("a", T0 + timedelta(hours=1)), T0)

    state = store.get(key("a"))
    assert state is not None
    assert state.last_run_at == T0
    assert state.last_status == "success"


def test_concurrent_upserts_of_one_new_instance_all_succeed(store: Store) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            barrier.wait(10)
            store.upsert(record("same", T0, n=n), T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    state = store.get(key("same"))
    assert state is not None
    assert state.args["n"] in range(8)


def test_delete_reports_whether_the_instance_existed(store: Store) -> None:
    store.upsert(record("a", T0), T0)

    assert store.delete(key("a")) is True
    assert store.delete(key("a")) is False
    assert store.get(key("a")) is None


def test_get_of_a_missing_instance_is_none(store: Store) -> None:
    assert store.get(key("nothing")) is None


def test_lease_of_is_the_lease_a_claim_took_until_a_commit_or_unlock_clears_it(
    store: Store,
) -> None:
    store.upsert(record("a", T0), T0)
    store.upsert(record("b", T0), T0)
    assert store.lease_of(key("a")) is None
    assert store.lease_of(key("missing")) is None

    first, second = claim(store, T0)
    assert store.lease_of(first.key) == first.lease
    assert store.lease_of(second.key) == second.lease
    assert first.lease != second.lease

    store.commit(first.key, first.lease or "", T0 + timedelta(hours=1), T0)
    store.unlock(second.key, second.lease or "")
    assert store.lease_of(first.key) is None
    assert store.lease_of(second.key) is None
    (again,) = claim(store, T0)
    assert store.lease_of(again.key) == again.lease != second.lease


@pytest.mark.parametrize(
    "name",
    ["with space", "{braces}", "colon:sep", "star*", "ünïcödé ✓", "x" * 1024, "UPPER", "upper"],
)
def test_any_instance_name_round_trips(store: Store, name: str) -> None:
    store.upsert(record(name, T0, label=name), T0)

    state = store.get(key(name))
    assert state is not None
    assert state.key.instance == name
    assert state.args["label"] == name
    (claimed,) = claim(store, T0)
    assert claimed.key.instance == name


def test_names_differing_only_in_case_are_distinct_instances(store: Store) -> None:
    store.upsert(record("Bill", T0, v=1), T0)
    store.upsert(record("bill", T0, v=2), T0)

    upper, lower = store.get(key("Bill")), store.get(key("bill"))
    assert upper is not None
    assert lower is not None
    assert (upper.args["v"], lower.args["v"]) == (1, 2)


def test_arguments_keep_their_json_types(store: Store) -> None:
    args = {"i": 1, "f": 1.5, "s": "x", "b": True, "n": None, "l": [1, "2"], "d": {"k": [1]}}
    store.upsert(record("a", T0, **args), T0)

    state = store.get(key("a"))
    assert state is not None
    assert dict(state.args) == args


# --- listing ------------------------------------------------------------------------------------


def test_list_pages_by_name(store: Store) -> None:
    names = [f"n{i:02d}" for i in range(25)]
    for name in reversed(names):
        store.upsert(record(name, T0), T0)

    first = store.list_instances("t", 0, 10)
    second = store.list_instances("t", 0, 10, after=first[-1].key.instance)
    third = store.list_instances("t", 0, 10, after=second[-1].key.instance)

    assert [r.key.instance for r in first + second + third] == names
    assert store.list_instances("t", 0, 10, after=names[-1]) == []


def test_list_returns_every_instance_once_while_instances_are_claimed_and_committed(
    store: Store,
) -> None:
    for i in range(60):
        store.upsert(record(f"n{i:02d}", T0 + timedelta(seconds=i % 7)), T0)
    seen: list[str] = []
    after: str | None = None
    now = T0

    while page := store.list_instances("t", 0, 7, after):
        seen.extend(r.key.instance for r in page)
        after = page[-1].key.instance
        now += timedelta(seconds=1)
        for claimed in claim(store, now, limit=5):
            store.commit(claimed.key, claimed.lease or "", now + timedelta(seconds=3), now)

    assert seen == sorted(seen)
    assert Counter(seen) == Counter(f"n{i:02d}" for i in range(60))


def test_list_is_scoped_to_task_and_partition(store: Store) -> None:
    store.upsert(record("a", T0, task="t"), T0)
    store.upsert(record("b", T0, task="u"), T0)
    store.upsert(record("c", T0, task="t", partition=2), T0)

    assert [r.key.instance for r in store.list_instances("t", 0, 10)] == ["a"]
    assert [r.key.instance for r in store.list_instances("t", 2, 10)] == ["c"]
    assert store.count_instances("t", 0) == 1


# --- strikes ------------------------------------------------------------------------------------


def test_strikes_are_stored_listed_and_removed(store: Store) -> None:
    everything = Strike("t")
    by_arg = Strike(None, "customer_id", "==", 12345)

    store.add_strike(everything)
    store.add_strike(by_arg)
    store.add_strike(by_arg)

    assert sorted(store.list_strikes(), key=repr) == sorted([everything, by_arg], key=repr)
    assert store.remove_strike(by_arg) is True
    assert store.remove_strike(by_arg) is False
    assert store.list_strikes() == [everything]


def test_strikes_marker_changes_when_strikes_change(store: Store) -> None:
    before = store.strikes_marker()
    assert store.strikes_marker() == before

    store.add_strike(Strike("t", "user", "==", "bill"))
    after_add = store.strikes_marker()
    store.remove_strike(Strike("t", "user", "==", "bill"))
    after_remove = store.strikes_marker()

    assert len({before, after_add, after_remove}) == 3


# --- bulk writes ----------------------------------------------------------------------------------


def test_upsert_many_writes_every_record_and_reports_locked_ones(store: Store) -> None:
    store.upsert(record("locked", T0), T0)
    claim(store, T0)
    batch = [record(f"b{i:03d}", T0 + timedelta(seconds=i), n=i) for i in range(120)]

    refused = store.upsert_many([*batch, record("locked", T0 + timedelta(hours=1))], T0)

    assert refused == [key("locked")]
    assert store.count_instances("t", 0) == 121
    state = store.get(key("b007"))
    assert state is not None
    assert state.args == {"n": 7}
    assert state.next_run == T0 + timedelta(seconds=7)
    locked = store.get(key("locked"))
    assert locked is not None
    assert locked.next_run == T0


def test_upsert_many_with_force_replaces_locked_records(store: Store) -> None:
    store.upsert(record("locked", T0), T0)
    claim(store, T0)

    assert store.upsert_many([record("locked", T0 + timedelta(hours=1))], T0, force=True) == []

    state = store.get(key("locked"))
    assert state is not None
    assert state.next_run == T0 + timedelta(hours=1)
    assert state.lease is None


# --- claims batch after batch --------------------------------------------------------------------


class Ticking:
    """A clock that moves one second on every reading (each batch is claimed at its own time)."""

    def __init__(self, start: datetime) -> None:
        self.readings: list[datetime] = []
        self._next = start

    def __call__(self) -> datetime:
        self.readings.append(self._next)
        self._next += timedelta(seconds=1)
        return self.readings[-1]


def fill(store: Store, count: int) -> None:
    store.upsert_many([record(f"i{n:04d}", T0 - timedelta(seconds=1)) for n in range(count)], T0)


def test_claim_batches_claims_each_batch_at_its_own_time_until_one_is_short(store: Store) -> None:
    fill(store, 250)
    clock = Ticking(T0)

    batches = list(store.claim_batches("t", 0, clock, 100, LEASE, "b1", max_batches=10))

    assert [len(b.records) for b in batches] == [100, 100, 50]
    assert [b.now for b in batches] == clock.readings[:3]
    for batch in batches:
        assert {r.locked_until for r in batch.records} == {batch.now + LEASE}
        assert all(r.lease and r.locked_by == "b1" for r in batch.records)
    names = [r.key.instance for b in batches for r in b.records]
    assert sorted(names) == [f"i{n:04d}" for n in range(250)]
    assert claim(store, clock.readings[-1], limit=1000) == []


def test_claim_batches_stops_after_max_batches_and_leaves_the_rest_claimable(
    store: Store,
) -> None:
    fill(store, 500)

    batches = list(store.claim_batches("t", 0, Ticking(T0), 100, LEASE, "b1", max_batches=2))

    assert [len(b.records) for b in batches] == [100, 100]
    assert len(claim(store, T0 + timedelta(seconds=5), limit=1000, owner="b2")) == 300


def test_claim_batches_closed_early_leaves_only_what_was_handed_over_leased(store: Store) -> None:
    fill(store, 300)
    batches = store.claim_batches("t", 0, Ticking(T0), 100, LEASE, "b1", max_batches=10)

    first = next(batches)
    batches.close()

    rest = claim(store, T0 + timedelta(seconds=5), limit=1000, owner="b2")
    assert len(first.records) == 100
    assert len(rest) == 200
    assert not {r.key for r in first.records} & {r.key for r in rest}


def test_claim_batches_from_concurrent_claimers_never_share_an_instance(store: Store) -> None:
    fill(store, 400)

    def claim_all(slot: int) -> list[InstanceRecord]:
        taken: list[InstanceRecord] = []
        while True:
            batches = list(
                store.claim_batches("t", 0, lambda: T0, 9, LEASE, f"b{slot}", max_batches=5)
            )
            taken.extend(r for b in batches for r in b.records)
            if len(batches[-1].records) < 9:
                return taken

    counts = claim_concurrently(claim_all)

    assert len(counts) == 400
    assert max(counts.values()) == 1


# --- batched polling and the server clock --------------------------------------------------------


def test_due_partitions_includes_every_group_with_a_claimable_instance(store: Store) -> None:
    store.upsert(record("due", T0, partition=1), T0)
    store.upsert(record("later", T0 + timedelta(hours=1), partition=2), T0)
    store.upsert(record("leased", T0, partition=3), T0)
    store.claim_due("t", 3, T0, 10, LEASE, "b1")
    store.upsert(record("expired", T0, partition=4), T0)
    store.claim_due("t", 4, T0, 10, LEASE, "b1")
    groups = [("t", p) for p in range(6)] + [("u", 1)]

    due = store.due_partitions(groups, T0 + LEASE / 2)
    later = store.due_partitions(groups, T0 + LEASE * 2)

    assert ("t", 1) in due
    assert ("t", 1) in later
    assert ("t", 4) in later
    assert due <= set(groups)


def test_server_time_when_offered_is_aware_and_close_to_now(store: Store) -> None:
    from celery_pyncette import _clock as clock

    server = store.server_time()

    if server is not None:
        assert server.tzinfo is not None
        assert abs((server - clock.utcnow()).total_seconds()) < 5
