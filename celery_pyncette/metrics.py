"""Optional Prometheus metrics (``pip install 'celery-pyncette[metrics]'``).

Beat and the worker call the ``record_*`` / ``observe_*`` / ``set_*`` functions below; each is a
cheap no-op when ``prometheus_client`` is not installed, so callers never check. Metrics go to
``prometheus_client``'s default registry (expose it with ``prometheus_client.start_http_server``
or your web framework's exporter), or to the registry given to :func:`install` first.

===============================  =========  =====================================================
metric                           type       labels: meaning
===============================  =========  =====================================================
``pyncette_claimed_total``       counter    ``task``: occurrences claimed by beat
``pyncette_sent_total``          counter    ``task``: messages published
``pyncette_commits_total``       counter    ``task``, ``status``: occurrences committed (runs,
                                           and ``missed`` / ``expired`` ones that did not run)
``pyncette_failures_total``      counter    ``task``: executions that raised
``pyncette_lease_lost_total``    counter    ``task``: commits or heartbeats whose lease was lost
``pyncette_tick_seconds``        histogram  one beat tick, claim to publish
``pyncette_due_backlog``         gauge      ``task``: instances due and not yet claimed
``pyncette_quarantined_total``   counter    ``task``: records quarantined (undecodable schedules)
``pyncette_quarantined_records`` gauge      ``task``: records quarantined now (refreshed by beat)
===============================  =========  =====================================================
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

try:  # pragma: no cover - exercised by whichever of the two is installed
    import prometheus_client
except ImportError:  # pragma: no cover
    prometheus_client = None  # type: ignore[assignment]

__all__ = [
    "enabled",
    "install",
    "observe_tick",
    "record_claimed",
    "record_commit",
    "record_failure",
    "record_lease_lost",
    "record_quarantined",
    "record_sent",
    "set_due_backlog",
    "set_quarantined",
]

#: Tick durations are short; buckets from a millisecond to a minute.
TICK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_lock = threading.Lock()
_metrics: dict[str, Any] | None = None
#: Tasks the last :func:`set_quarantined` counted (set to 0 once they are no longer counted).
_quarantined_tasks: set[str] = set()


def enabled() -> bool:
    """True when ``prometheus_client`` is installed, so the functions below record."""
    return prometheus_client is not None


def install(registry: Any = None) -> bool:
    """Create the metrics in ``registry`` (default: ``prometheus_client.REGISTRY``).

    Called implicitly by the first recording; call it yourself first to use another registry.
    Returns False (and records nothing) when ``prometheus_client`` is not installed; a second call
    keeps the metrics of the first.
    """
    global _metrics
    if prometheus_client is None:
        return False
    with _lock:
        if _metrics is None:
            target = prometheus_client.REGISTRY if registry is None else registry
            _metrics = _create(target)
    return True


def _create(registry: Any) -> dict[str, Any]:
    assert prometheus_client is not None
    counter, gauge, histogram = (
        prometheus_client.Counter,
        prometheus_client.Gauge,
        prometheus_client.Histogram,
    )
    return {
        "claimed": counter(
            "pyncette_claimed", "Occurrences claimed by beat", ["task"], registry=registry
        ),
        "sent": counter("pyncette_sent", "Task messages published", ["task"], registry=registry),
        "commits": counter(
            "pyncette_commits", "Executions committed", ["task", "status"], registry=registry
        ),
        "failures": counter(
            "pyncette_failures", "Executions that raised", ["task"], registry=registry
        ),
        "lease_lost": counter(
            "pyncette_lease_lost",
            "Commits or heartbeats whose lease was lost",
            ["task"],
            registry=registry,
        ),
        "tick": histogram(
            "pyncette_tick_seconds",
            "Duration of one beat tick",
            buckets=TICK_BUCKETS,
            registry=registry,
        ),
        "backlog": gauge(
            "pyncette_due_backlog", "Instances due and not yet claimed", ["task"], registry=registry
        ),
        "quarantined": counter(
            "pyncette_quarantined",
            "Records quarantined because they cannot be decoded or computed",
            ["task"],
            registry=registry,
        ),
        "quarantined_now": gauge(
            "pyncette_quarantined_records",
            "Records in quarantine, as beat last counted them",
            ["task"],
            registry=registry,
        ),
    }


def _get(name: str) -> Any:
    if _metrics is None and not install():
        return None
    assert _metrics is not None
    return _metrics[name]


def record_claimed(task: str, n: int = 1) -> None:
    """``n`` occurrences of ``task`` were claimed by beat."""
    metric = _get("claimed")
    if metric is not None and n:
        metric.labels(task=task).inc(n)


def record_sent(task: str, n: int = 1) -> None:
    """``n`` messages of ``task`` were published."""
    metric = _get("sent")
    if metric is not None and n:
        metric.labels(task=task).inc(n)


def record_commit(task: str, status: str = "success", n: int = 1) -> None:
    """``n`` occurrences of ``task`` were committed with ``status`` (``"missed"`` and
    ``"expired"`` ones by beat, without running)."""
    metric = _get("commits")
    if metric is not None and n:
        metric.labels(task=task, status=status).inc(n)


def record_failure(task: str) -> None:
    """An execution of ``task`` raised."""
    metric = _get("failures")
    if metric is not None:
        metric.labels(task=task).inc()


def record_lease_lost(task: str) -> None:
    """A commit, unlock or heartbeat of ``task`` found its lease lost."""
    metric = _get("lease_lost")
    if metric is not None:
        metric.labels(task=task).inc()


def observe_tick(seconds: float) -> None:
    """One beat tick took ``seconds``."""
    metric = _get("tick")
    if metric is not None:
        metric.observe(seconds)


def set_due_backlog(task: str, n: int) -> None:
    """``task`` has ``n`` instances due and not yet claimed."""
    metric = _get("backlog")
    if metric is not None:
        metric.labels(task=task).set(n)


def record_quarantined(task: str) -> None:
    """A record of ``task`` was quarantined."""
    metric = _get("quarantined")
    if metric is not None:
        metric.labels(task=task).inc()


def set_quarantined(counts: Mapping[str, int]) -> None:
    """Records in quarantine now, by task; a task absent from ``counts`` (but set before) has 0."""
    metric = _get("quarantined_now")
    if metric is None:
        return
    with _lock:
        for task in _quarantined_tasks - counts.keys():
            metric.labels(task=task).set(0)
        for task, n in counts.items():
            metric.labels(task=task).set(n)
        _quarantined_tasks.clear()
        _quarantined_tasks.update(counts)
