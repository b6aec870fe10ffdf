"""Optional OpenTelemetry spans (``pip install 'celery-pyncette[otel]'``).

Beat makes a span per claimed batch (``pyncette claim <task>``) and a child of it per batch it
sends (``pyncette send <task>``); each message of that batch carries the send span's context in
its headers (``traceparent``, with whatever else the configured propagator writes). The worker's
span of one run (``pyncette execute <task>``) continues the trace:

* when a span is current as the run starts (``opentelemetry-instrumentation-celery``'s
  ``run/<task>``, itself parented on the message's context), the execution span is its child
  (kind INTERNAL);
* otherwise it is parented on the context the message carries (kind CONSUMER).

With the Celery instrumentation in beat too, its ``apply_async/<task>`` spans are made while the
send span is current, so they are its children, and the context it writes into the headers
replaces ours: the chain stays send → apply_async → run → execute, each span once.

This module imports ``opentelemetry`` once, when it is first imported. When the package is not
installed, every function here is a no-op that returns shared inert objects and nothing of
``opentelemetry`` is imported. When it is installed but no tracer provider was set, the spans are
skipped the same way (checked once per batch or run). Attribute names are ``pyncette.*``; see
``docs/tracing.md``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

try:
    from opentelemetry import context as _context
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
except ImportError:  # the [otel] extra is not installed: everything below is inert
    _trace = None  # type: ignore[assignment]

__all__ = [
    "ENABLED",
    "NO_HEADERS",
    "NO_SEND",
    "ExecutionSpan",
    "SendSpan",
    "active",
    "claimed",
    "clock",
    "execution",
    "sending",
]

#: True when ``opentelemetry-api`` is importable.
ENABLED = _trace is not None

#: The headers of a batch sent without tracing: none to add.
NO_HEADERS: Mapping[str, str] = {}

_TRACER_NAME = "celery_pyncette"
#: The outcome of a run that settled nothing (the store failed, or Celery retried the run).
UNSETTLED = "unsettled"


#: Whether a tracer provider was found set (it stays set: OpenTelemetry sets it once).
_provider_set = False


def active() -> bool:
    """True when ``opentelemetry`` is installed and a tracer provider was set (spans record).

    Once a provider was found, the answer is kept; until then each call looks again (a provider
    set late, after the first batch or run, is taken up).
    """
    global _provider_set
    if _provider_set:
        return True
    if _trace is None:
        return False
    _provider_set = not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)
    return _provider_set


def _tracer() -> Any:
    return _trace.get_tracer(_TRACER_NAME)


# --- beat: claim and send spans -----------------------------------------------------------------


def clock() -> int:
    """A start time for :func:`claimed` (nanoseconds since the epoch, as OpenTelemetry counts)."""
    return time.time_ns()


def claimed(task: str, partition: int, started: int, records: int, quarantined: int) -> Any:
    """Record the claim of one batch, begun at ``started`` (:func:`clock`) and done now.

    Returns the context its send span is made in (:func:`sending`), or ``None`` without tracing.
    """
    if not active():
        return None
    span = _tracer().start_span(
        f"pyncette claim {task}",
        context=_context.Context(),  # a root: the tick that claims is no span of its own
        kind=_trace.SpanKind.INTERNAL,
        attributes={
            "pyncette.task": task,
            "pyncette.partition": partition,
            "pyncette.count": records,
            "pyncette.quarantined": quarantined,
        },
        start_time=started,
    )
    span.end()
    return _trace.set_span_in_context(span)


class _SendSpan:
    """The span of one sent batch, current while it is open (see :func:`sending`)."""

    __slots__ = ("_span", "_token", "headers")

    def __init__(self, task: str, partition: int, count: int, parent: Any) -> None:
        self._span = _tracer().start_span(
            f"pyncette send {task}",
            context=parent,
            kind=_trace.SpanKind.PRODUCER,
            attributes={
                "pyncette.task": task,
                "pyncette.partition": partition,
                "pyncette.count": count,
            },
        )
        self._token: Any = None
        #: What each message of the batch adds to its headers (the send span's context).
        self.headers: Mapping[str, str] = NO_HEADERS

    def __enter__(self) -> _SendSpan:
        span_context = _trace.set_span_in_context(self._span)
        self._token = _context.attach(span_context)
        carrier: dict[str, str] = {}
        _propagate.inject(carrier, context=span_context)
        self.headers = carrier
        return self

    def published(self, sent: int, unsent: int) -> None:
        """What the broker took of the batch."""
        self._span.set_attribute("pyncette.sent", sent)
        self._span.set_attribute("pyncette.unsent", unsent)
        if unsent:
            self._span.set_status(_trace.StatusCode.ERROR, f"{unsent} message(s) not sent")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._span.record_exception(exc)
            self._span.set_status(_trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
        _context.detach(self._token)
        self._span.end()


class _NoSend:
    """The send span of a batch sent without tracing."""

    __slots__ = ()
    headers = NO_HEADERS

    def __enter__(self) -> _NoSend:
        return self

    def published(self, sent: int, unsent: int) -> None:
        """Nothing to record."""

    def __exit__(self, *exc_info: object) -> None:
        return None


NO_SEND = _NoSend()
#: The span of one sent batch, recording or not.
SendSpan = _SendSpan | _NoSend


def sending(task: str, partition: int, count: int, claim: Any) -> SendSpan:
    """A context manager around the sending of one claimed batch of ``count`` records.

    ``claim`` is what :func:`claimed` returned for the batch (``None``: no tracing). While it is
    open its span is current, and its ``headers`` are what each message adds to its own.
    """
    if claim is None:
        return NO_SEND
    return _SendSpan(task, partition, count, claim)


# --- the worker: the execution span ---------------------------------------------------------------


class _RequestGetter:
    """Reads propagation headers from a Celery request: attributes, or its ``headers`` mapping
    (where custom headers land depends on the protocol and the Celery version)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        if value is None:
            headers = getattr(carrier, "headers", None)
            value = headers.get(key) if isinstance(headers, Mapping) else None
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, Iterable):
            return [str(v) for v in value]
        return [str(value)]

    def keys(self, carrier: Any) -> list[str]:
        return []


_GETTER = _RequestGetter()


class _ExecutionSpan:
    """The span of one run of an occurrence (see :func:`execution`)."""

    __slots__ = ("_current", "_span", "_token")

    def __init__(
        self,
        request: Any,
        task: str,
        instance: str | None,
        partition: int,
        scheduled_at: datetime,
        current: bool,
    ) -> None:
        running = _trace.get_current_span()
        if running.get_span_context().is_valid:
            # A span of the worker is open (the Celery instrumentation's run span): nest in it.
            parent, kind = None, _trace.SpanKind.INTERNAL
        else:
            # the getter is duck-typed: opentelemetry's Getter base class may not be importable
            parent = _propagate.extract(request, getter=_GETTER)  # type: ignore[arg-type]
            kind = _trace.SpanKind.CONSUMER
        self._span = _tracer().start_span(
            f"pyncette execute {task}",
            context=parent,
            kind=kind,
            attributes={
                "pyncette.task": task,
                "pyncette.instance": instance or "",
                "pyncette.partition": partition,
                "pyncette.scheduled_at": scheduled_at.isoformat(),
            },
        )
        self._current = current
        self._token: Any = None

    def __enter__(self) -> _ExecutionSpan:
        if self._current:
            self._token = _context.attach(_trace.set_span_in_context(self._span))
        return self

    def failed(self, exc: BaseException) -> None:
        """The function (or a middleware) raised ``exc``, a failure of the run."""
        self._span.record_exception(exc)
        self._span.set_status(_trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")

    def finish(self, outcome: str | None) -> None:
        """Record the outcome and end the span; call it once, inside the ``with`` block."""
        self._span.set_attribute("pyncette.outcome", outcome or UNSETTLED)
        self._span.end()

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _context.detach(self._token)
            self._token = None


class _NoExecution:
    """The execution span of a run without tracing."""

    __slots__ = ()

    def __enter__(self) -> _NoExecution:
        return self

    def failed(self, exc: BaseException) -> None:
        """Nothing to record."""

    def finish(self, outcome: str | None) -> None:
        """Nothing to record."""

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_EXECUTION = _NoExecution()
#: The span of one run, recording or not.
ExecutionSpan = _ExecutionSpan | _NoExecution


def execution(
    request: Any,
    task: str,
    instance: str | None,
    partition: int,
    scheduled_at: datetime,
    *,
    current: bool = True,
) -> ExecutionSpan:
    """The span of one run of an occurrence, started now; end it with ``finish(outcome)``.

    Used as a context manager with ``current`` true, the span is the current one inside the
    block (spans the function makes nest in it). A signal receiver that starts it in one signal
    and finishes it in another passes ``current=False``: the Celery instrumentation attaches and
    detaches its own context in those same signals, and interleaving would leak contexts.
    """
    if not active():
        return _NO_EXECUTION
    return _ExecutionSpan(request, task, instance, partition, scheduled_at, current)
