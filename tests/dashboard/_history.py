"""A settled run written into a demo store, as a worker's commit writes it (shared by the
dashboard's history tests)."""

from __future__ import annotations

from datetime import timedelta

from celery_pyncette import Pyncette, Run
from celery_pyncette.stores.base import InstanceKey


def settle_one(pyncette: Pyncette, instance: str, status: str, error: str | None) -> Run:
    """Claim ``instance`` of ``reminders.hello`` (due now or not) and commit it with a history
    entry; return the entry."""
    store = pyncette.store
    key = InstanceKey("reminders.hello", 0, instance)
    record = store.get(key)
    assert record is not None
    at = record.next_run
    claimed = store.claim_due(key.task, 0, at, 1000, timedelta(seconds=30), "b")
    (got,) = [r for r in claimed if r.key == key]
    store.unlock_many([r.ref for r in claimed if r.key != key])
    entry = Run(at, at, at + timedelta(seconds=2), status, "worker-7", error)
    later = at + timedelta(minutes=15)
    store.commit(key, got.lease, later, at, status, run=entry, history_size=20)  # type: ignore[arg-type]
    return entry
