"""Upserts that keep the timer (``keep_next_run``), run over every store.

An existing, healthy instance whose stored spec equals the new one keeps its stored next run and
takes the new arguments; anything else takes the record's next run. Time is driven through the
``now`` argument: no test sleeps.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest

from celery_pyncette.errors import LeaseLostError, TaskLockedError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
HOUR = timedelta(hours=1)
CRON = {"kind": "cron", "expression": "0 * * * *", "timezone": "Europe/Ljubljana"}
#: CRON with its keys in another order: the same spec.
CRON_REORDERED = {"timezone": "Europe/Ljubljana", "expression": "0 * * * *", "kind": "cron"}
OTHER_CRON = {"kind": "cron", "expression": "30 * * * *", "timezone": "Europe/Ljubljana"}
NESTED = {"kind": "celery", "schedule": {"minute": "0", "hour": "*"}, "v": 1}
NESTED_REORDERED = {"v": 1, "schedule": {"hour": "*", "minute": "0"}, "kind": "celery"}


def key(name: str = "a") -> InstanceKey:
    return InstanceKey("t", 0, name)


def record(
    name: str = "a", next_run: datetime = T0, spec: Mapping[str, Any] = CRON, **args: Any
) -> InstanceRecord:
    return InstanceRecord(key=key(name), next_run=next_run, spec=spec, args=args)


def stored(store: Store, name: str = "a") -> InstanceRecord:
    found = store.get(key(name))
    assert found is not None
    return found


@contextlib.contextmanager
def other_client(backend: ModuleType, store: Store) -> Iterator[Store]:
    """Another client of the backend (another process) where it has one, else the same store."""
    make = getattr(backend, "make_second_client", None)
    if make is None:
        yield store
        return
    with make(store) as other:
        yield other


def claim_one(store: Store, now: datetime) -> InstanceRecord:
    (got,) = store.claim_due("t", 0, now, 10, LEASE, "beat")
    return got


@pytest.mark.parametrize(
    ("first", "again"), [(CRON, CRON), (CRON, CRON_REORDERED), (NESTED, NESTED_REORDERED)]
)
def test_the_same_spec_keeps_the_stored_next_run_and_replaces_the_args(
    store: Store, first: Mapping[str, Any], again: Mapping[str, Any]
) -> None:
    store.upsert(record(spec=first, user="x"), T0 - HOUR)

    kept = store.upsert(record(next_run=T0 + HOUR, spec=again, user="y"), T0, keep_next_run=True)

    assert kept == T0
    state = stored(store)
    assert state.next_run == T0
    assert dict(state.args) == {"user": "y"}
    assert dict(state.spec) == dict(again)
    assert [r.key for r in store.claim_due("t", 0, T0, 10, LEASE, "beat")] == [key()]


def test_a_changed_spec_takes_the_new_next_run(store: Store) -> None:
    store.upsert(record(user="x"), T0 - HOUR)

    taken = store.upsert(
        record(next_run=T0 + HOUR, spec=OTHER_CRON, user="y"), T0, keep_next_run=True
    )

    assert taken == T0 + HOUR
    state = stored(store)
    assert state.next_run == T0 + HOUR
    assert dict(state.spec) == OTHER_CRON
    assert store.claim_due("t", 0, T0, 10, LEASE, "beat") == []


def test_a_new_instance_takes_the_records_next_run(store: Store) -> None:
    assert store.upsert(record(next_run=T0 + HOUR), T0, keep_next_run=True) == T0 + HOUR
    assert stored(store).next_run == T0 + HOUR


def test_without_keep_next_run_the_same_spec_takes_the_new_next_run(store: Store) -> None:
    store.upsert(record(), T0 - HOUR)

    assert store.upsert(record(next_run=T0 + HOUR), T0) == T0 + HOUR
    assert stored(store).next_run == T0 + HOUR


def test_the_kept_next_run_is_the_one_stored_at_the_write_not_an_earlier_read(
    store: Store,
) -> None:
    """A read of T0, then a claim and commit moving it to T0 + 1h, then a keeping write: the write
    keeps T0 + 1h (a write of the T0 read earlier would run T0 twice)."""
    store.upsert(record(), T0 - HOUR)
    read_before = stored(store).next_run
    got = claim_one(store, T0)
    store.commit(got.key, got.lease or "", T0 + HOUR, T0)

    kept = store.upsert(record(next_run=T0 + 2 * HOUR, user="y"), T0, keep_next_run=True)

    assert read_before == T0
    assert kept == T0 + HOUR
    assert stored(store).next_run == T0 + HOUR


def test_a_locked_instance_still_refuses_without_force(store: Store) -> None:
    store.upsert(record(user="x"), T0 - HOUR)
    got = claim_one(store, T0)

    with pytest.raises(TaskLockedError):
        store.upsert(record(next_run=T0 + HOUR, user="y"), T0, keep_next_run=True)
    with pytest.raises(TaskLockedError):
        store.upsert(record(next_run=T0 + HOUR, spec=OTHER_CRON), T0, keep_next_run=True)

    state = stored(store)
    assert dict(state.args) == {"user": "x"}
    assert dict(state.spec) == CRON
    assert state.lease == got.lease
    assert state.next_run == T0


def test_force_over_a_lock_with_the_same_spec_keeps_the_next_run_and_voids_the_lease(
    store: Store,
) -> None:
    store.upsert(record(user="x"), T0 - HOUR)
    got = claim_one(store, T0)

    kept = store.upsert(record(next_run=T0 + HOUR, user="y"), T0, force=True, keep_next_run=True)

    assert kept == T0
    state = stored(store)
    assert (state.next_run, state.locked_until, dict(state.args)) == (T0, None, {"user": "y"})
    with pytest.raises(LeaseLostError):
        store.commit(got.key, got.lease or "", T0 + HOUR, T0)


def test_an_expired_lease_keeps_the_next_run_and_is_released(store: Store) -> None:
    store.upsert(record(), T0 - HOUR)
    claim_one(store, T0)

    kept = store.upsert(record(next_run=T0 + HOUR), T0 + 2 * LEASE, keep_next_run=True)

    assert kept == T0
    state = stored(store)
    assert (state.next_run, state.locked_until, state.lease) == (T0, None, None)


def test_the_last_run_is_kept_with_the_next_run(store: Store) -> None:
    store.upsert(record(), T0 - HOUR)
    got = claim_one(store, T0)
    store.commit(got.key, got.lease or "", T0 + HOUR, T0, "failed")

    store.upsert(record(next_run=T0 + 2 * HOUR), T0, keep_next_run=True)

    state = stored(store)
    assert (state.next_run, state.last_run_at, state.last_status) == (T0 + HOUR, T0, "failed")


def test_a_quarantined_instance_takes_the_new_next_run_even_with_the_same_spec(
    store: Store,
) -> None:
    store.upsert(record(), T0 - HOUR)
    assert store.quarantine(key(), None, "broken", T0)

    repaired = store.upsert(record(next_run=T0 + HOUR), T0, keep_next_run=True)

    assert repaired == T0 + HOUR
    assert stored(store).next_run == T0 + HOUR
    assert store.list_quarantined("t") == []


def test_the_bulk_path_keeps_takes_and_refuses_item_by_item(store: Store) -> None:
    store.upsert(record("same", user="x"), T0 - HOUR)
    store.upsert(record("changed", user="x"), T0 - HOUR)
    store.upsert(record("running", user="x", next_run=T0 - HOUR), T0 - HOUR)
    running = claim_one(store, T0 - HOUR)
    later = T0 + HOUR

    refused = store.upsert_many(
        [
            record("same", later, CRON_REORDERED, user="y"),
            record("changed", later, OTHER_CRON, user="y"),
            record("new", later, CRON, user="y"),
            record("running", later, CRON, user="y"),
        ],
        T0 - HOUR + LEASE / 2,
        keep_next_run=True,
    )

    assert refused == [key("running")]
    assert {name: stored(store, name).next_run for name in ("same", "changed", "new")} == {
        "same": T0,
        "changed": later,
        "new": later,
    }
    assert {name: dict(stored(store, name).args) for name in ("same", "changed", "new")} == {
        "same": {"user": "y"},
        "changed": {"user": "y"},
        "new": {"user": "y"},
    }
    assert stored(store, "running").lease == running.lease
    assert dict(stored(store, "running").args) == {"user": "x"}


def test_the_bulk_path_without_keep_next_run_takes_every_new_next_run(store: Store) -> None:
    store.upsert(record("a"), T0 - HOUR)
    store.upsert(record("b"), T0 - HOUR)

    assert store.upsert_many([record("a", T0 + HOUR), record("b", T0 + HOUR)], T0) == []

    assert [stored(store, name).next_run for name in ("a", "b")] == [T0 + HOUR] * 2


def test_the_bulk_path_with_force_replaces_running_instances(store: Store) -> None:
    store.upsert(record("same", user="x"), T0 - HOUR)
    store.upsert(record("changed", user="x"), T0 - HOUR)
    claimed = store.claim_due("t", 0, T0, 10, LEASE, "beat")
    assert len(claimed) == 2
    later = T0 + HOUR

    refused = store.upsert_many(
        [record("same", later, CRON, user="y"), record("changed", later, OTHER_CRON, user="y")],
        T0,
        force=True,
        keep_next_run=True,
    )

    assert refused == []
    assert [stored(store, name).next_run for name in ("same", "changed")] == [T0, later]
    assert [stored(store, name).lease for name in ("same", "changed")] == [None, None]


def test_keeping_writes_racing_claims_and_commits_never_move_the_next_run_back(
    backend: ModuleType, store: Store
) -> None:
    """A beat claims and a worker commits, moving the next run one second on each time, while
    start-up code keeps re-scheduling with the same spec from another client. Were the kept value
    read before the write, a write would put back a next run already committed past, and the
    claim after it would return an occurrence that already ran."""
    far = T0 + timedelta(days=1)  # every next run below is due at it
    store.upsert(record(), T0)
    rounds, errors = 60, []
    committed: list[datetime] = []
    done = threading.Event()

    def beat_and_worker() -> None:
        try:
            for _ in range(rounds):
                claimed = store.claim_due("t", 0, far, 10, LEASE, "beat")
                if not claimed:
                    continue
                (got,) = claimed
                if committed:
                    assert got.next_run >= committed[-1], "a next run already committed is back"
                with contextlib.suppress(LeaseLostError):  # a forced write would void it
                    store.commit(got.key, got.lease or "", got.next_run + timedelta(seconds=1), far)
                    committed.append(got.next_run + timedelta(seconds=1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def start_up_code(client: Store) -> None:
        try:
            for n in range(rounds * 3):
                if done.is_set():
                    return
                with contextlib.suppress(TaskLockedError):  # claimed right now
                    client.upsert(record(next_run=far, n=n), far, keep_next_run=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with other_client(backend, store) as client:
        threads = [
            threading.Thread(target=beat_and_worker),
            threading.Thread(target=start_up_code, args=(client,)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert committed, "the worker never committed"
    state = stored(store)
    assert state.next_run >= committed[-1]
    assert state.next_run < far, "a keeping write never takes its own next run"


@pytest.mark.garbage("CORRUPTIONS")
def test_a_keeping_write_over_an_undecodable_record_leaves_a_healthy_one(
    store: Store, backend: ModuleType
) -> None:
    """A record not yet quarantined with a field that cannot be read: the keeping write repairs
    it. It keeps the stored next run only when that and the spec are readable (garbage in the
    arguments or the lock is replaced); a spec that is garbage is not the same spec."""
    for field in backend.CORRUPTIONS:
        task = f"t-{field}"
        bad = InstanceKey(task, 0, "bad")
        store.upsert(InstanceRecord(bad, T0, CRON), T0 - HOUR)
        backend.corrupt(store, bad, field)

        kept = store.upsert(InstanceRecord(bad, T0 + HOUR, CRON, {"n": 1}), T0, keep_next_run=True)

        timing_garbage = field.split("/")[0] in {"spec", "s", "next_run", "n"}
        assert kept == (T0 + HOUR if timing_garbage else T0), field
        state = store.get(bad)  # decodes
        assert state is not None, field
        assert (state.next_run, dict(state.args), state.lease) == (kept, {"n": 1}, None), field
        assert store.claim_due(task, 0, kept - timedelta(microseconds=1), 10, LEASE, "b") == []
        assert [r.key for r in store.claim_due(task, 0, kept, 10, LEASE, "b")] == [bad], field
