"""OpenTelemetry through a real beat and a real worker in this process, with the SDK's in-memory
exporter: beat's ``Scheduler`` ticking here, Celery's own worker (``start_worker``, the solo pool)
consuming from the local Redis broker. The execution span continues beat's send span, which
continues its claim span; one execution span per run, with the occurrence's attributes.
Separate beat and worker processes: ``test_tracing.py``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from celery_pyncette import Context, Pyncette
from celery_pyncette import _tracing as tracing
from celery_pyncette.beat import Scheduler
from tests.support.servers import require_server

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
export = pytest.importorskip("opentelemetry.sdk.trace.export")

pytestmark = [pytest.mark.e2e, pytest.mark.server, pytest.mark.timeout(120)]

BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The in-memory exporter every span of this process ends in (the global provider is left
    alone: other tests of the process do not see these spans)."""
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "active", lambda: True)
    monkeypatch.setattr(tracing, "_tracer", lambda: provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


@pytest.fixture
def logging_left_as_found() -> Iterator[None]:
    """Celery's in-process worker sets up logging (handlers on the root and the task loggers);
    put it back, so later tests in this process see the logging they would see alone."""
    loggers = [logging.getLogger(name) for name in ("", "celery", "celery.task")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.mark.usefixtures("logging_left_as_found")
def test_the_worker_span_continues_beats_send_span_in_the_in_memory_exporter(spans: Any) -> None:
    require_server("redis", "127.0.0.1", 6379)
    app = Celery(f"traced-{uuid.uuid4().hex[:8]}", broker=BROKER, set_as_current=False)
    app.conf.update(
        task_default_queue=f"traced-{uuid.uuid4().hex[:8]}",  # apart from other tests' workers
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    pyncette = Pyncette(app, url="memory://", poll_interval=0.2)
    ran: list[str] = []

    @pyncette.dynamic_task(name="traced.hello")
    def hello(context: Context) -> None:
        ran.append(context.scheduled_at.isoformat() if context.scheduled_at else "")

    pyncette.schedule_task(hello, "u1", schedule="* * * * * *")
    beat = Scheduler(app)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            deadline = time.monotonic() + 30
            while len(ran) < 3 and time.monotonic() < deadline:
                beat.tick()
                time.sleep(0.1)
    finally:
        beat.close()

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    executions = [s for s in finished if s.name == "pyncette execute traced.hello"]
    assert len(ran) >= 3
    assert sorted(s.attributes["pyncette.scheduled_at"] for s in executions) == sorted(ran)
    for execution in executions:
        send = by_id[execution.parent.span_id]
        claim = by_id[send.parent.span_id]
        assert (send.name, claim.name) == (
            "pyncette send traced.hello",
            "pyncette claim traced.hello",
        )
        assert {s.context.trace_id for s in (execution, send, claim)} == {
            execution.context.trace_id
        }
        assert execution.attributes["pyncette.task"] == "traced.hello"
        assert execution.attributes["pyncette.instance"] == "u1"
        assert execution.attributes["pyncette.outcome"] == "success"
