"""Where a message goes: the route of a batch, worked out once, and the queues to declare.

Celery's ``send_task_message`` derives the ``producer.publish`` arguments (exchange, routing key,
serializer, compression, delivery mode, message properties) from a task's routed options for
every message. :class:`Route` holds them for a batch whose messages share them, by Celery 5's
rules (a direct exchange publishes to the queue by name through the default exchange), and
:func:`publish_routed` publishes a message on it with the publish signals Celery sends. Options
whose route only Celery can tell (a named or non-direct exchange) have no :class:`Route`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals
from kombu.entity import Queue
from kombu.messaging import Producer

from celery_pyncette._publish._message import PUBLISH_TIMEOUT, Sendable

#: ``send_task_message`` parameters that are not message properties.
_SENDER_PARAMETERS = frozenset(
    {
        "exchange",
        "routing_key",
        "queue",
        "event_dispatcher",
        "retry",
        "retry_policy",
        "serializer",
        "delivery_mode",
        "compression",
        "declare",
        "headers",
        "exchange_type",
        "timeout",
        "confirm_timeout",
    }
)


@dataclass(frozen=True, slots=True)
class Route:
    """The ``producer.publish`` arguments ``send_task_message`` derives from a task's options."""

    exchange: str
    routing_key: str
    serializer: str
    compression: str | None
    delivery_mode: int
    properties: dict[str, Any]
    retry_policy: dict[str, Any]

    @classmethod
    def of(cls, app: Celery, options: Mapping[str, Any]) -> Route | None:
        """The route for these options, or ``None`` when only Celery's sender can tell."""
        if options.get("exchange_type") not in (None, "direct") or options.get("exchange"):
            return None
        amqp, conf = app.amqp, app.conf
        queue = options.get("queue")
        if queue is None:
            queue = amqp.default_queue
        elif isinstance(queue, str):
            queue = amqp.queues[queue]
        exchange = getattr(queue, "exchange", None)
        if not isinstance(queue, Queue) or getattr(exchange, "type", "direct") != "direct":
            return None
        delivery_mode = options.get("delivery_mode") or getattr(exchange, "delivery_mode", None)
        return cls(
            exchange="",
            routing_key=queue.name,
            serializer=options.get("serializer") or conf.task_serializer,
            compression=options.get("compression") or conf.task_compression,
            delivery_mode=delivery_mode or conf.task_default_delivery_mode,
            properties={k: v for k, v in options.items() if k not in _SENDER_PARAMETERS},
            retry_policy=dict(conf.task_publish_retry_policy),
        )


def publish_routed(
    producer: Producer, name: str, message: Any, route: Route, extra: Mapping[str, Any]
) -> None:
    """What ``send_task_message`` does for a message on ``route``: its queue was declared for
    the batch, and Celery's publish signals are sent as ``send_task_message`` sends them."""
    headers, properties, body, _ = message
    properties.update(route.properties)
    if signals.before_task_publish.receivers:
        signals.before_task_publish.send(
            sender=name,
            body=body,
            exchange=route.exchange,
            routing_key=route.routing_key,
            declare=[],
            headers=headers,
            properties=properties,
            retry_policy=dict(route.retry_policy),
        )
    producer.publish(  # type: ignore[no-untyped-call]
        body,
        exchange=route.exchange,
        routing_key=route.routing_key,
        serializer=route.serializer,
        compression=route.compression,
        retry=False,
        retry_policy=route.retry_policy,
        delivery_mode=route.delivery_mode,
        declare=[],
        headers=headers,
        timeout=PUBLISH_TIMEOUT,
        confirm_timeout=None,
        **extra,
        **properties,
    )
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(
            sender=name,
            body=body,
            headers=headers,
            exchange=route.exchange,
            routing_key=route.routing_key,
        )


def declare_queues(producer: Producer, items: Iterable[Sendable]) -> None:
    """Declare each distinct queue of the batch once (kombu caches it per connection)."""
    seen: set[str] = set()
    for item in items:
        queue = item.queue()
        if not isinstance(queue, Queue) or queue.name in seen:
            continue
        seen.add(queue.name)
        if not getattr(queue, "no_declare", False) and type(queue).__name__ != "Broadcast":
            producer.maybe_declare(queue)  # type: ignore[no-untyped-call]
