"""Quarantine metrics: ``pyncette_quarantined_total`` counts each record once, when it is
quarantined; beat keeps ``pyncette_quarantined_records`` current at a bounded rate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette, metrics
from celery_pyncette import _quarantine as quarantine
from celery_pyncette.beat import Scheduler
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from tests.conftest import FakeClock

prometheus_client = pytest.importorskip("prometheus_client")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A private registry; the module's own metrics (if any) come back after the test."""
    monkeypatch.setattr(metrics, "_metrics", None)
    monkeypatch.setattr(metrics, "_quarantined_tasks", set())
    own = prometheus_client.CollectorRegistry()
    assert metrics.install(own)
    return own


def test_the_gauge_drops_tasks_no_longer_counted_to_zero(registry: Any) -> None:
    metrics.set_quarantined({"a": 2, "b": 1})
    metrics.set_quarantined({"b": 3})

    value = registry.get_sample_value
    assert value("pyncette_quarantined_records", {"task": "a"}) == 0
    assert value("pyncette_quarantined_records", {"task": "b"}) == 3


def test_beat_counts_each_quarantined_record_once_and_refreshes_the_gauge(
    registry: Any, fake_clock: FakeClock, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyncette = Pyncette(app, url="memory://", batch_size=5, poll_interval=1.0)

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    store = pyncette.store
    for i in range(7):
        key = InstanceKey("hello", 0, f"bad{i}")
        store.upsert(InstanceRecord(key, fake_clock.now, {"kind": "?"}, {}), fake_clock.now)
    reads: list[int] = []
    real_list = store.list_quarantined

    def counted(*args: Any) -> Any:
        reads.append(1)
        return real_list(*args)

    monkeypatch.setattr(store, "list_quarantined", counted)
    scheduler = Scheduler(app)
    value = registry.get_sample_value
    try:
        for _ in range(5):
            scheduler.tick()
            fake_clock.advance(seconds=1)
        assert value("pyncette_quarantined_total", {"task": "hello"}) == 7
        assert value("pyncette_quarantined_records", {"task": "hello"}) == 7
        ticks_reads = len(reads)
        # force: beat quarantined it under its claim, whose lease the memory store keeps
        pyncette.schedule_task(hello, "bad0", interval=timedelta(seconds=5), force=True)
        # five ticks a second apart took the clock 5 s past the first refresh
        fake_clock.advance(seconds=quarantine.REFRESH_EVERY.total_seconds() - 6)
        scheduler.tick()
        assert value("pyncette_quarantined_records", {"task": "hello"}) == 7, "not yet refreshed"
        fake_clock.advance(seconds=1)
        scheduler.tick()
        assert value("pyncette_quarantined_records", {"task": "hello"}) == 6
        assert value("pyncette_quarantined_total", {"task": "hello"}) == 7
    finally:
        scheduler.close()
    # sync_static's one read at start, and one per REFRESH_EVERY: not one per tick
    assert ticks_reads <= 2
    assert len(reads) == ticks_reads + 1
