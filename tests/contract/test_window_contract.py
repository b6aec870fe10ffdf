"""Bounds and jitter live in the stored spec and the send time in ``next_run``: on every store a
bounded, jittered schedule comes back equal from the spec it wrote, and its occurrence is
recovered exactly from the next run the store gives back, from ``get`` and from a claim."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette.schedules import (
    BoundedSchedule,
    CronSchedule,
    IntervalSchedule,
    JitteredSchedule,
    Schedule,
    schedule_from_spec,
)
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store

NOW = datetime(2030, 1, 1, 8, 0, 0, tzinfo=timezone.utc)
START = datetime(2030, 1, 2, 0, 0, 0, 250000, tzinfo=timezone.utc)
END = datetime(2030, 2, 1, tzinfo=timezone.utc)

SCHEDULES = {
    "cron": JitteredSchedule(
        BoundedSchedule(CronSchedule("0 9 * * *", "Europe/Dublin"), START, END),
        timedelta(minutes=10),
    ),
    "interval": JitteredSchedule(
        BoundedSchedule(IntervalSchedule(timedelta(seconds=90.5)), START, None),
        timedelta(seconds=7.25),
    ),
}


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_a_bounded_jittered_schedule_round_trips_through_the_store(store: Store, kind: str) -> None:
    schedule = SCHEDULES[kind].bound_to("t", "i1")
    first = schedule.first_run(NOW)
    assert first is not None
    nominal = schedule.nominal(first)
    assert nominal >= START
    assert first != nominal  # sent at an offset
    key = InstanceKey("t", 0, "i1")
    store.upsert(InstanceRecord(key, first, schedule.to_spec(), {}), NOW, force=True)

    got = store.get(key)
    assert got is not None
    rebuilt: Schedule = schedule_from_spec(got.spec)
    assert rebuilt == schedule
    assert rebuilt.to_spec() == schedule.to_spec()
    assert got.next_run == first
    assert rebuilt.bound_to("t", "i1").nominal(got.next_run) == nominal

    (batch,) = store.claim_batches("t", 0, lambda: first, 10, timedelta(seconds=30), "me", 1)
    (claimed,) = batch.records
    assert claimed.next_run == first
    assert schedule_from_spec(claimed.spec).bound_to("t", "i1").nominal(claimed.next_run) == (
        nominal
    )
