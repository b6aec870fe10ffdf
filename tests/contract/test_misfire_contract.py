"""What the misfire grace and the expiry ask of every store: an instance's own grace kept in its
spec (read back by a claim too), and one ``commit_many`` settling late claims each with its own
status (``"missed"``, ``"expired"``). Time is driven through the ``now`` arguments."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from celery_pyncette._misfire import SPEC_KEY, stored_grace, with_grace
from celery_pyncette.stores.base import Commit, InstanceKey, InstanceRecord, Status, Store

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
SPEC = {"kind": "interval", "seconds": 60.0}


def record(name: str, grace: timedelta | None) -> InstanceRecord:
    return InstanceRecord(
        key=InstanceKey("t", 0, name), next_run=T0, spec=with_grace(SPEC, grace), args={}
    )


def test_an_instances_grace_is_kept_in_its_spec_and_claimed_with_it(store: Store) -> None:
    store.upsert_many(
        [record("strict", timedelta(seconds=12.5)), record("plain", None)], T0, force=False
    )

    stored = store.get(InstanceKey("t", 0, "strict"))
    assert stored is not None
    assert stored_grace(stored.spec) == timedelta(seconds=12.5)
    claimed = {r.key.instance: r for r in store.claim_due("t", 0, T0, 10, LEASE, "beat")}
    assert stored_grace(claimed["strict"].spec) == timedelta(seconds=12.5)
    assert stored_grace(claimed["plain"].spec) is None
    assert SPEC_KEY not in claimed["plain"].spec


def test_one_commit_many_settles_late_claims_each_with_its_status(store: Store) -> None:
    store.upsert_many([record(n, None) for n in ("a", "b", "c")], T0, force=False)
    claimed = {r.key.instance: r for r in store.claim_due("t", 0, T0, 10, LEASE, "beat")}
    later = T0 + timedelta(minutes=5)
    statuses: dict[str, Status] = {"a": "missed", "b": "expired", "c": "success"}

    lost = store.commit_many(
        [
            Commit(claimed[n].key, claimed[n].lease or "", later + timedelta(minutes=1), s)
            for n, s in statuses.items()
        ],
        later,
    )

    assert lost == []
    for name, status in statuses.items():
        state = store.get(InstanceKey("t", 0, name))
        assert state is not None
        assert state.last_status == status
        assert state.lease is None
        assert state.next_run == later + timedelta(minutes=1)
        assert state.last_run_at == later
