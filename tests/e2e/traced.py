"""The end-to-end project (:mod:`tests.e2e.proj`) with OpenTelemetry, for ``test_tracing.py``.

Each process sets a tracer provider whose spans go, as each ends, to ``E2E_SPANS``: one JSON line
per span (the SDK's ``SimpleSpanProcessor``, so nothing waits in a buffer when a process is
stopped). With ``E2E_OTEL_CELERY=1``, ``opentelemetry-instrumentation-celery`` is enabled too;
with ``E2E_PLAIN_PUBLISH=1``, beat publishes through its plain ``send_task`` path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from tests.e2e.proj import app

__all__ = ["app"]


class JsonLinesExporter(SpanExporter):
    """Appends each finished span to a file, one line of the facts the tests check."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            context = span.get_span_context()
            assert context is not None
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": f"{context.trace_id:032x}",
                        "span_id": f"{context.span_id:016x}",
                        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "attributes": dict(span.attributes or {}),
                        "status": span.status.status_code.name,
                        "pid": os.getpid(),
                    }
                )
                + "\n"
            )
        with open(self.path, "a", encoding="utf-8") as out:
            out.write("".join(lines))  # one write: processes append to the same file
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(os.environ["E2E_SPANS"])))
trace.set_tracer_provider(provider)

if os.environ.get("E2E_PLAIN_PUBLISH") == "1":
    # beat's publisher takes its plain ``app.send_task`` path, as on a Celery it is not verified on
    from celery_pyncette._publish import _publisher

    _publisher.factory_for = lambda app: None  # type: ignore[attr-defined]

if os.environ.get("E2E_OTEL_CELERY") == "1":
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
