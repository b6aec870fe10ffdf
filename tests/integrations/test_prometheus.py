"""Optional Prometheus metrics: recorded into a registry when prometheus_client is installed,
silent no-ops when it is not."""

from __future__ import annotations

from typing import Any

import pytest

from celery_pyncette import metrics

prometheus_client = pytest.importorskip("prometheus_client")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A private registry; the module's own metrics (if any) come back after the test."""
    monkeypatch.setattr(metrics, "_metrics", None)
    own = prometheus_client.CollectorRegistry()
    assert metrics.install(own)
    return own


def test_every_recording_function_lands_in_its_metric(registry: Any) -> None:
    metrics.record_claimed("hello", 3)
    metrics.record_sent("hello", 2)
    metrics.record_commit("hello")
    metrics.record_commit("hello", "failed")
    metrics.record_failure("hello")
    metrics.record_lease_lost("hello")
    metrics.observe_tick(0.02)
    metrics.set_due_backlog("hello", 17)
    metrics.set_due_backlog("hello", 5)

    value = registry.get_sample_value
    assert value("pyncette_claimed_total", {"task": "hello"}) == 3
    assert value("pyncette_sent_total", {"task": "hello"}) == 2
    assert value("pyncette_commits_total", {"task": "hello", "status": "success"}) == 1
    assert value("pyncette_commits_total", {"task": "hello", "status": "failed"}) == 1
    assert value("pyncette_failures_total", {"task": "hello"}) == 1
    assert value("pyncette_lease_lost_total", {"task": "hello"}) == 1
    assert value("pyncette_tick_seconds_count") == 1
    assert value("pyncette_tick_seconds_bucket", {"le": "0.025"}) == 1
    assert value("pyncette_due_backlog", {"task": "hello"}) == 5


def test_a_second_install_keeps_the_first_registry(registry: Any) -> None:
    assert metrics.install(prometheus_client.CollectorRegistry())

    metrics.record_sent("x")

    assert registry.get_sample_value("pyncette_sent_total", {"task": "x"}) == 1


def test_without_prometheus_client_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_metrics", None)
    monkeypatch.setattr(metrics, "prometheus_client", None)

    assert not metrics.enabled()
    assert not metrics.install()
    metrics.record_claimed("hello", 1)
    metrics.record_commit("hello", "success")
    metrics.observe_tick(1.0)
    metrics.set_due_backlog("hello", 3)
    assert metrics._metrics is None
