"""Poison isolation, run over every store: a record that cannot be decoded never stops a claim.

Each backend module of ``tests/backends`` says what garbage its store can hold (``CORRUPTIONS``:
field -> garbage a claim must quarantine, ``field/variant`` for more garbage of one field;
``HEALED_BY_CLAIM``: garbage a claim overwrites
without reading it) and writes it straight into the store with ``corrupt(store, key, field)``
(a raw SQL UPDATE, an HSET, a boto3 UpdateItem). The memory store holds Python objects, so only
the quarantine()/list_quarantined()/upsert/delete contract runs there. Time is driven through
the ``now`` argument: no test sleeps.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta, timezone
from types import ModuleType

import pytest

from celery_pyncette.errors import CorruptRecordError, LeaseLostError
from celery_pyncette.stores.base import (
    Commit,
    InstanceKey,
    InstanceRecord,
    Quarantined,
    Store,
)

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
SPEC = {"cron": "* * * * *", "timezone": None}


def key(name: str, task: str = "t", partition: int = 0) -> InstanceKey:
    return InstanceKey(task, partition, name)


def record(
    name: str, next_run: datetime = T0, task: str = "t", partition: int = 0
) -> InstanceRecord:
    return InstanceRecord(key(name, task, partition), next_run, SPEC, {"n": name})


def names(records: list[InstanceRecord]) -> list[str]:
    return [r.key.instance for r in records]


def fields_of(backend: ModuleType, kind: str) -> list[str]:
    """The fields the backend can corrupt so. A test marked ``garbage(kind)`` is not collected
    for a backend with none (tests/contract/conftest.py), so this is never empty."""
    fields = sorted(getattr(backend, kind))
    assert fields, f"{backend.NAME}: {kind} is empty; mark the test garbage({kind!r})"
    return fields


def stored_name(backend: ModuleType, field: str) -> str:
    """How a reason names the field a corruption label is about (``"a/utf-8"``: more garbage in
    ``a``; a backend's ``FIELD_LABELS`` give its stored names' labels)."""
    name = field.split("/", 1)[0]
    return str(getattr(backend, "FIELD_LABELS", {}).get(name, name))


# --- quarantine() and list_quarantined() ---------------------------------------------------------


def test_quarantine_without_a_lease_takes_the_record_out_of_claims_and_polls(store: Store) -> None:
    store.upsert(record("a"), T0)
    store.upsert(record("b"), T0)

    assert store.quarantine(key("a"), None, "spec: not a schedule", T0) is True

    assert store.due_partitions([("t", 0)], T0) == {("t", 0)}  # b is still due
    batch = store.claim("t", 0, T0, 10, LEASE, "b1")
    assert names(batch.records) == ["b"]
    assert batch.quarantined == []  # quarantined before: not reported again
    assert store.due_partitions([("t", 0)], T0 + LEASE / 2) == set()  # b is leased now
    assert store.list_quarantined() == [Quarantined(key("a"), "spec: not a schedule", T0)]
    kept = store.get(key("a"))
    assert kept is not None
    assert kept.spec == SPEC
    assert "a" in names(store.list_instances("t", 0, 10))


def test_quarantine_with_the_claimers_lease_while_it_holds_it(store: Store) -> None:
    store.upsert(record("a"), T0)
    (claimed,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")
    assert claimed.lease is not None

    assert store.quarantine(key("a"), claimed.lease, "cannot compute the next run", T0) is True

    later = T0 + LEASE * 10  # long after the lease expired
    assert store.claim("t", 0, later, 10, LEASE, "b2").records == []
    assert store.due_partitions([("t", 0)], later) == set()
    (entry,) = store.list_quarantined("t")
    assert entry == Quarantined(key("a"), "cannot compute the next run", T0)


def test_quarantine_with_a_wrong_lease_changes_nothing(store: Store) -> None:
    store.upsert(record("a"), T0)
    (claimed,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")

    assert store.quarantine(key("a"), "not-the-lease", "x", T0) is False
    assert store.quarantine(key("gone"), None, "x", T0) is False

    assert store.list_quarantined() == []
    assert store.lease_of(key("a")) == claimed.lease
    store.commit(key("a"), claimed.lease or "", T0 + timedelta(minutes=1), T0)
    assert names(store.claim_due("t", 0, T0 + timedelta(minutes=1), 10, LEASE, "b1")) == ["a"]


def test_upsert_repairs_a_quarantined_record_claimable_at_its_new_next_run(store: Store) -> None:
    store.upsert(record("a"), T0)
    store.quarantine(key("a"), None, "bad", T0)
    later = T0 + timedelta(minutes=5)

    store.upsert(record("a", later), T0)

    assert store.list_quarantined() == []
    assert store.claim_due("t", 0, later - timedelta(seconds=1), 10, LEASE, "b1") == []
    assert store.due_partitions([("t", 0)], later) == {("t", 0)}
    assert names(store.claim_due("t", 0, later, 10, LEASE, "b1")) == ["a"]


def test_delete_removes_a_quarantined_record_and_its_entry(store: Store) -> None:
    store.upsert(record("a"), T0)
    store.quarantine(key("a"), None, "bad", T0)

    assert store.delete(key("a")) is True

    assert store.list_quarantined() == []
    assert store.get(key("a")) is None
    store.upsert(record("a"), T0)  # a new record of the same name is healthy
    assert names(store.claim_due("t", 0, T0, 10, LEASE, "b1")) == ["a"]


def test_list_quarantined_is_ordered_by_key_filtered_by_task_and_limited(store: Store) -> None:
    keys = [key("b", "t2", 1), key("a", "t2", 1), key("z", "t2", 0), key("m", "t1", 3)]
    for k in keys:
        store.upsert(record(k.instance, T0, k.task, k.partition), T0)
        store.quarantine(k, None, f"bad {k.instance}", T0)
    store.upsert(record("healthy", T0, "t2", 0), T0)

    listed = store.list_quarantined()

    assert [q.key for q in listed] == [
        key("m", "t1", 3),
        key("z", "t2", 0),
        key("a", "t2", 1),
        key("b", "t2", 1),
    ]
    assert [q.reason for q in listed] == ["bad m", "bad z", "bad a", "bad b"]
    assert [q.key.instance for q in store.list_quarantined("t2")] == ["z", "a", "b"]
    assert [q.key.instance for q in store.list_quarantined("t2", limit=2)] == ["z", "a"]
    assert store.list_quarantined("nothing") == []
    assert store.list_quarantined(limit=0) == []
    assert store.list_quarantined(limit=-1) == []


# --- undecodable records -------------------------------------------------------------------------


def _three(store: Store, task: str) -> None:
    """h1, bad, h2, due in that order; and a healthy record in another partition."""
    store.upsert(record("h1", T0 - timedelta(seconds=2), task), T0)
    store.upsert(record("bad", T0 - timedelta(seconds=1), task), T0)
    store.upsert(record("h2", T0, task), T0)
    store.upsert(record("other", T0, task, partition=1), T0)


@pytest.mark.garbage("CORRUPTIONS")
def test_a_claim_quarantines_an_undecodable_record_and_leases_its_batch_mates(
    store: Store, backend: ModuleType
) -> None:
    for field in fields_of(backend, "CORRUPTIONS"):
        task = f"t-{field}"
        bad = key("bad", task)
        _three(store, task)
        backend.corrupt(store, bad, field)

        batch = store.claim(task, 0, T0, 10, LEASE, "b1")

        assert names(batch.records) == ["h1", "h2"], field
        assert all(r.lease for r in batch.records), field
        assert all(r.locked_by == "b1" for r in batch.records), field
        (entry,) = batch.quarantined
        assert entry.key == bad, field
        assert stored_name(backend, field) in entry.reason, (field, entry.reason)
        assert entry.since == T0, field
        # the healthy ones are ours: they commit, and nothing else is left locked
        leases = [Commit(r.key, r.lease or "", T0 + timedelta(hours=1)) for r in batch.records]
        assert store.commit_many(leases, T0) == [], field
        assert names(store.claim_due(task, 1, T0, 10, LEASE, "b1")) == ["other"], field
        # the bad one is out of the due index
        again = store.claim(task, 0, T0 + timedelta(minutes=1), 10, LEASE, "b2")
        assert (again.records, again.quarantined) == ([], []), field
        assert store.due_partitions([(task, 0)], T0 + timedelta(minutes=1)) == set(), field
        with pytest.raises(CorruptRecordError) as caught:
            store.get(bad)
        assert caught.value.key == bad, field
        assert stored_name(backend, field) in caught.value.reason, field
        assert names(store.list_instances(task, 0, 10)) == ["h1", "h2"], field
        assert [(q.key, q.since) for q in store.list_quarantined(task)] == [(bad, T0)], field
        assert stored_name(backend, field) in store.list_quarantined(task)[0].reason, field


@pytest.mark.garbage("CORRUPTIONS")
def test_a_quarantined_undecodable_record_is_repaired_by_upsert_or_removed_by_delete(
    store: Store, backend: ModuleType
) -> None:
    for field in fields_of(backend, "CORRUPTIONS"):
        task = f"t-{field}"
        bad = key("bad", task)
        store.upsert(record("bad", T0, task), T0)
        backend.corrupt(store, bad, field)
        assert [q.key for q in store.claim(task, 0, T0, 10, LEASE, "b1").quarantined] == [bad]
        later = T0 + timedelta(minutes=5)

        store.upsert(record("bad", later, task), T0)

        repaired = store.get(bad)
        assert repaired is not None, field
        assert repaired.next_run == later, field
        assert store.list_quarantined(task) == [], field
        assert store.claim_due(task, 0, later - timedelta(seconds=1), 10, LEASE, "b1") == []
        (claimed,) = store.claim_due(task, 0, later, 10, LEASE, "b1")
        assert claimed.key == bad, field
        assert claimed.spec == SPEC, field

        store.commit(bad, claimed.lease or "", later, later)
        backend.corrupt(store, bad, field)
        assert len(store.claim(task, 0, later, 10, LEASE, "b1").quarantined) == 1, field
        assert store.delete(bad) is True, field
        assert store.get(bad) is None, field
        assert store.list_quarantined(task) == [], field


@pytest.mark.garbage("CORRUPTIONS")
def test_quarantined_records_count_against_the_claim_limit(
    store: Store, backend: ModuleType
) -> None:
    for field in fields_of(backend, "CORRUPTIONS"):
        task = f"t-{field}"
        _three(store, task)
        backend.corrupt(store, key("bad", task), field)

        first = store.claim(task, 0, T0, 2, LEASE, "b1")
        second = store.claim(task, 0, T0, 2, LEASE, "b1")

        assert (names(first.records), [q.key.instance for q in first.quarantined]) == (
            ["h1"],
            ["bad"],
        ), field
        assert (names(second.records), second.quarantined) == (["h2"], []), field


@pytest.mark.garbage("CORRUPTIONS")
def test_claim_batches_carry_the_quarantined_records(store: Store, backend: ModuleType) -> None:
    for field in fields_of(backend, "CORRUPTIONS"):
        task = f"t-{field}"
        for n in range(7):
            store.upsert(record(f"i{n}", T0 - timedelta(seconds=10 - n), task), T0)
        for name in ("i1", "i4"):
            backend.corrupt(store, key(name, task), field)

        with closing(store.claim_batches(task, 0, lambda: T0, 2, LEASE, "b1", 10)) as stream:
            batches = list(stream)

        leased = [name for batch in batches for name in names(batch.records)]
        quarantined = [q.key.instance for batch in batches for q in batch.quarantined]
        assert leased == ["i0", "i2", "i3", "i5", "i6"], field
        assert quarantined == ["i1", "i4"], field
        assert [q.key.instance for q in store.list_quarantined(task)] == ["i1", "i4"], field


@pytest.mark.garbage("CORRUPTIONS")
def test_a_claim_ahead_left_unread_still_quarantines_and_unlocks(
    store: Store, backend: ModuleType
) -> None:
    for field in fields_of(backend, "CORRUPTIONS"):
        task = f"t-{field}"
        for n in range(4):
            store.upsert(record(f"i{n}", T0 - timedelta(seconds=10 - n), task), T0)
        backend.corrupt(store, key("i3", task), field)

        with closing(store.claim_batches(task, 0, lambda: T0, 2, LEASE, "b1", 10)) as stream:
            first = next(stream)  # a store may claim the next batch meanwhile: dropped here

        assert names(first.records) == ["i0", "i1"], field
        assert names(store.claim_due(task, 0, T0, 10, LEASE, "b2")) == ["i2"], field
        assert [q.key.instance for q in store.list_quarantined(task)] == ["i3"], field


@pytest.mark.garbage("HEALED_BY_CLAIM")
def test_garbage_a_claim_overwrites_is_refused_by_reads_then_healed(
    store: Store, backend: ModuleType
) -> None:
    for field in fields_of(backend, "HEALED_BY_CLAIM"):
        task = f"t-{field}"
        bad = key("bad", task)
        store.upsert(record("bad", T0, task), T0)
        backend.corrupt(store, bad, field)

        with pytest.raises(CorruptRecordError, match=field):
            store.get(bad)
        assert store.list_instances(task, 0, 10) == [], field

        (claimed,) = store.claim_due(task, 0, T0, 10, LEASE, "b1")

        assert claimed.key == bad, field
        assert claimed.locked_until == T0 + LEASE, field
        healed = store.get(bad)
        assert healed is not None, field
        assert healed.lease == claimed.lease, field


@pytest.mark.garbage("TOLERATED")
def test_a_last_run_that_cannot_be_read_reads_as_none(store: Store, backend: ModuleType) -> None:
    for field in fields_of(backend, "TOLERATED"):
        task = f"t-{field}"
        store.upsert(record("a", T0, task), T0)
        backend.corrupt(store, key("a", task), field)

        got = store.get(key("a", task))
        batch = store.claim(task, 0, T0, 10, LEASE, "b1")

        assert got is not None, field
        assert got.last_run_at is None, field
        assert names(store.list_instances(task, 0, 10)) == ["a"], field
        assert (names(batch.records), batch.quarantined) == (["a"], []), field
        assert batch.records[0].last_run_at is None, field


def test_commits_of_the_lease_a_quarantine_took_are_lost(store: Store) -> None:
    store.upsert(record("a"), T0)
    (claimed,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")
    store.quarantine(key("a"), claimed.lease, "bad", T0)

    with pytest.raises(LeaseLostError):
        store.commit(key("a"), claimed.lease or "", T0 + timedelta(minutes=1), T0)
    assert store.unlock_many([(key("a"), claimed.lease or "")]) == [key("a")]
    assert store.claim_due("t", 0, T0 + timedelta(hours=1), 10, LEASE, "b1") == []
