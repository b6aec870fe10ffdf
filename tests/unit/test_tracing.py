"""OpenTelemetry spans, in process: beat's claim and send spans, the context each message carries
on both publish paths, and the worker's execution span continuing it. Spans go to the SDK's
in-memory exporter through a tracer provider of the test's own (the global one is left alone).
Real beat and worker processes: ``tests/e2e/test_tracing.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celery_pyncette import Context, FailureMode, Pyncette
from celery_pyncette import _tracing as tracing
from celery_pyncette._dispatch import Dispatcher, sync_static
from celery_pyncette._publish import Publisher
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
export = pytest.importorskip("opentelemetry.sdk.trace.export")

Message = tuple[str, dict[str, Any], dict[str, Any]]
ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The exporter every span of the test ends in."""
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "active", lambda: True)
    monkeypatch.setattr(tracing, "_tracer", lambda: provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def tick(pyncette: Pyncette, plain: bool = False) -> list[Message]:
    dispatcher = Dispatcher(pyncette.runtime, "beat-1", Publisher(pyncette.app, plain=plain))
    definitions = pyncette.definitions()
    sync_static(pyncette.runtime, definitions, pyncette.runtime.now())
    try:
        dispatcher.dispatch(definitions)
    finally:
        dispatcher.publisher.close()
    return [(m.headers["task"], m.decode()[1], m.headers) for m in take_waiting(pyncette.app)]


def named(exporter: Any, prefix: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def traceparent(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def declare(pyncette: Pyncette, fail: bool = False) -> Any:
    """A static task ``job`` and a dynamic one ``hello`` (returned)."""

    @pyncette.task(name="job", schedule="* * * * * */10", failure_mode=FailureMode.UNLOCK)
    def job(context: Context) -> None:
        if fail:
            raise RuntimeError("boom")

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def due_messages(pyncette: Pyncette, clock: FakeClock, plain: bool = False) -> list[Message]:
    tick(pyncette, plain)
    clock.advance(seconds=10)
    return tick(pyncette, plain)


@pytest.mark.parametrize("plain", [False, True], ids=["fast", "plain"])
def test_each_message_carries_its_send_span_a_child_of_its_claim_span(
    fake_clock: FakeClock, pyncette: Pyncette, spans: Any, plain: bool
) -> None:
    hello = declare(pyncette)
    pyncette.schedule_task(hello, "u1", schedule="* * * * * */10")
    pyncette.schedule_task(hello, "u2", schedule="* * * * * */10")

    messages = due_messages(pyncette, fake_clock, plain)

    by_task = {name: [m for m in messages if m[0] == name] for name in ("job", "hello")}
    assert [len(by_task["job"]), len(by_task["hello"])] == [1, 2]
    for task, sent in by_task.items():
        (claim,) = named(spans, f"pyncette claim {task}")
        (send,) = named(spans, f"pyncette send {task}")
        assert claim.parent is None
        assert send.parent.span_id == claim.context.span_id
        assert send.context.trace_id == claim.context.trace_id
        assert send.kind is trace.SpanKind.PRODUCER
        assert dict(claim.attributes) == {
            "pyncette.task": task,
            "pyncette.partition": 0,
            "pyncette.count": len(sent),
            "pyncette.quarantined": 0,
        }
        assert dict(send.attributes) == {
            "pyncette.task": task,
            "pyncette.partition": 0,
            "pyncette.count": len(sent),
            "pyncette.sent": len(sent),
            "pyncette.unsent": 0,
        }
        assert {m[2]["traceparent"] for m in sent} == {traceparent(send)}


def test_the_execution_span_continues_the_message_context_with_its_occurrence(
    fake_clock: FakeClock, pyncette: Pyncette, spans: Any
) -> None:
    hello = declare(pyncette)
    pyncette.schedule_task(hello, "u1", schedule="* * * * * */10")
    (message,) = [m for m in due_messages(pyncette, fake_clock) if m[0] == "hello"]
    (send,) = named(spans, "pyncette send hello")

    pyncette.app.tasks["hello"].apply(kwargs=message[1], headers=message[2])

    (run,) = named(spans, "pyncette execute")
    assert run.name == "pyncette execute hello"
    assert run.parent.span_id == send.context.span_id
    assert run.context.trace_id == send.context.trace_id
    assert run.kind is trace.SpanKind.CONSUMER
    assert dict(run.attributes) == {
        "pyncette.task": "hello",
        "pyncette.instance": "u1",
        "pyncette.partition": 0,
        "pyncette.scheduled_at": message[2]["pyncette"]["scheduled_at"],
        "pyncette.outcome": "success",
    }


def test_a_failed_run_is_an_error_span_with_its_outcome(
    fake_clock: FakeClock, pyncette: Pyncette, spans: Any
) -> None:
    declare(pyncette, fail=True)
    (message,) = [m for m in due_messages(pyncette, fake_clock) if m[0] == "job"]

    pyncette.app.tasks["job"].apply(kwargs=message[1], headers=message[2])

    (run,) = named(spans, "pyncette execute")
    assert run.status.status_code is trace.StatusCode.ERROR
    assert [e.name for e in run.events] == ["exception"]
    assert run.attributes["pyncette.outcome"] == "unlocked"
    assert run.attributes["pyncette.instance"] == ""


def test_a_span_open_in_the_worker_is_the_parent_and_the_run_span_is_current_inside(
    fake_clock: FakeClock, pyncette: Pyncette, spans: Any
) -> None:
    """As beside ``opentelemetry-instrumentation-celery``, whose run span is open by then."""
    seen: list[Any] = []

    @pyncette.task(name="nested", schedule="* * * * * */10")
    def nested(context: Context) -> None:
        seen.append(trace.get_current_span())

    (message,) = due_messages(pyncette, fake_clock)
    tracer = tracing._tracer()

    with tracer.start_as_current_span("run/nested") as outer:
        pyncette.app.tasks["nested"].apply(kwargs=message[1], headers=message[2])

    (run,) = named(spans, "pyncette execute")
    assert run.parent.span_id == outer.get_span_context().span_id
    assert run.kind is trace.SpanKind.INTERNAL
    assert seen[0].get_span_context().span_id == run.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_direct_call_makes_no_span(pyncette: Pyncette, spans: Any) -> None:
    declare(pyncette)
    pyncette.app.tasks["job"].apply()
    assert named(spans, "pyncette") == []


def test_without_a_tracer_provider_messages_carry_no_trace_context(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    declare(pyncette)
    (message,) = [m for m in due_messages(pyncette, fake_clock) if m[0] == "job"]
    assert tracing.active() is False
    assert "traceparent" not in message[2]


def test_without_opentelemetry_importable_the_module_is_inert() -> None:
    """A process where ``opentelemetry`` cannot be imported: a beat tick and a run go as before,
    nothing of ``opentelemetry`` is imported, and the helpers hand out the shared inert objects."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # import opentelemetry raises ImportError
        from datetime import datetime, timezone
        from celery import Celery
        from celery_pyncette import Pyncette, _clock, _tracing as tracing
        from celery_pyncette._dispatch import Dispatcher, sync_static
        from tests.support.messages import take_waiting

        app = Celery("inert", broker="memory://", set_as_current=False)
        pyncette = Pyncette(app, url="memory://")
        runs = []

        @pyncette.task(name="job", schedule="* * * * * *")
        def job(context):
            runs.append(context.scheduled_at)

        now = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
        _clock.utcnow = lambda: now[0]
        sync_static(pyncette.runtime, pyncette.definitions(), now[0])
        now[0] = now[0].replace(second=5)
        Dispatcher(pyncette.runtime, "beat").dispatch(pyncette.definitions())
        (message,) = take_waiting(app)
        app.tasks["job"].apply(kwargs=message.decode()[1], headers=message.headers)
        assert len(runs) == 1, runs
        assert set(message.headers) & {"traceparent", "tracestate"} == set(), message.headers
        assert not tracing.ENABLED and not tracing.active()
        assert tracing.claimed("job", 0, tracing.clock(), 1, 0) is None
        assert tracing.sending("job", 0, 1, None) is tracing.NO_SEND
        assert tracing.execution(None, "job", None, 0, now[0]) is tracing._NO_EXECUTION
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m])
        assert loaded == [], loaded
        print("inert")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT_DIR,
        env={"PYTHONPATH": str(ROOT_DIR), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "inert"
