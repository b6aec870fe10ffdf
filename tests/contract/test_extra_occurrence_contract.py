"""Extra occurrences (run now, backfill) and backfill ledgers, stored by every store.

They are ordinary records under reserved names, so what this checks is what their readers rely
on: an instance's extra occurrences are one contiguous range of names, in time order; they are
read apart from the instances; one is claimed and settled (deleted) without touching the instance
it runs for; a ledger keeps its windows as written.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from celery_pyncette._overview import _extras_in, _just_before
from celery_pyncette._records import (
    BACKFILL,
    EXTRA_PREFIX,
    RUN_NOW,
    backfill_key,
    backfill_record,
    extra_key,
    extra_prefix,
    extra_record,
    extra_target,
    is_extra_instance,
)
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord, Store

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)
TASK = "reports.daily"


def instance(name: str) -> InstanceRecord:
    spec = {"kind": "cron", "expression": "0 9 * * *", "timezone": None}
    return InstanceRecord(InstanceKey(TASK, 1, name), T0 + timedelta(days=1), spec, {"who": name})


def extra(target: str | None, at: datetime, why: str = BACKFILL) -> InstanceRecord:
    return extra_record(extra_key(TASK, 1, target, at), target, at, {"who": target}, why)


def test_extras_of_an_instance_are_one_range_in_time_order(store: Store) -> None:
    users = ["Zed", "_x", "acme", "bob", "~tilde", "ünïcode", "__pyncette_extra__"[:-1]]
    for name in users:
        store.upsert(instance(name), T0)
    times = [T0 - timedelta(days=d, microseconds=d) for d in (3, 1, 2)]
    for target in ("acme", "bob", None):
        for at in times:
            store.upsert(extra(target, at), T0)

    for target in ("acme", "bob", None):
        prefix = extra_prefix(target)
        page = store.list_instances(TASK, 1, 100, prefix[:-1])
        mine = [r for r in page if r.key.instance.startswith(prefix)]
        assert page[: len(mine)] == mine  # contiguous, first after the prefix
        assert [r.next_run for r in mine] == sorted(times)
        assert {extra_target(r) for r in mine} == {target}
        assert all(dict(r.args) == {"who": target} for r in mine)
    assert _extras_in(store, TASK, 1) == 9
    after_extras = store.list_instances(TASK, 1, 100, _just_before(EXTRA_PREFIX))
    assert [is_extra_instance(r.key.instance) for r in after_extras][:9] == [True] * 9
    names = [r.key.instance for r in store.list_instances(TASK, 1, 100)]
    assert sorted(n for n in names if not is_extra_instance(n)) == sorted(users)


def test_an_extra_occurrence_is_claimed_and_settled_apart_from_its_instance(
    store: Store,
) -> None:
    store.upsert(instance("acme"), T0)
    at = T0 - timedelta(seconds=5)
    store.upsert(extra("acme", at, RUN_NOW), T0)

    (claimed,) = store.claim_due(TASK, 1, T0, 10, LEASE, "beat")
    assert claimed.key == extra_key(TASK, 1, "acme", at)
    assert claimed.next_run == at
    assert store.get(InstanceKey(TASK, 1, "acme")) == instance("acme")  # not locked
    store.commit(claimed.key, claimed.lease, None, T0 + timedelta(seconds=1))

    assert store.get(claimed.key) is None
    assert store.get(InstanceKey(TASK, 1, "acme")) == instance("acme")
    assert store.claim_due(TASK, 1, T0 + timedelta(seconds=2), 10, LEASE, "beat") == []


def test_a_static_tasks_extra_occurrence_is_kept_beside_its_record(store: Store) -> None:
    static = InstanceRecord(InstanceKey(TASK, 1, STATIC_INSTANCE), T0 + timedelta(hours=1))
    store.upsert(static, T0)
    store.upsert(extra(None, T0, RUN_NOW), T0)

    (claimed,) = store.claim_due(TASK, 1, T0, 10, LEASE, "beat")

    assert extra_target(claimed) is None
    assert is_extra_instance(claimed.key.instance)
    assert store.get(static.key) == static


def test_a_backfill_ledger_keeps_its_windows(store: Store) -> None:
    windows = [[(T0 - timedelta(days=d)).isoformat(), T0.isoformat()] for d in (7, 2)]
    store.upsert(backfill_record(TASK, "acme", windows, T0), T0, force=True)
    store.upsert(backfill_record(TASK, None, windows[:1], T0), T0, force=True)

    kept = store.get(backfill_key(TASK, "acme"))
    static = store.get(backfill_key(TASK, None))

    assert kept is not None
    assert static is not None
    assert kept.args == {"task": TASK, "instance": "acme", "windows": windows}
    assert static.args["windows"] == windows[:1]
    assert store.claim_due(kept.key.task, 0, T0 + timedelta(days=365), 10, LEASE, "b") == []
