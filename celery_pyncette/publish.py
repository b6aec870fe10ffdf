"""Publishing occurrences as ordinary Celery task messages, a batch at a time.

The dispatcher hands over a batch; the publisher reports which messages the broker did not take,
so their claims can be released. Messages are built by Celery's own factory
(``app.amqp.create_task_message``, routed by ``app.amqp.router``, with the task's execution
options merged in exactly as ``app.send_task`` does) and published as Celery's
``send_task_message`` publishes them, so any Celery worker consumes them and the
``before_task_publish`` / ``after_task_publish`` signals fire as usual. What differs from calling
``send_task`` per message:

* the factory builds one prototype per task and batch, and each message is a copy of it with its
  own id and keyword arguments (the only parts that differ, with protocol 2 and no task-sent
  events; otherwise the factory builds every message);
* the route (exchange, routing key, delivery mode, serializer) is worked out once per batch, and
  the messages go straight to the producer (to ``send_task_message`` when the route needs it:
  ``task_routes``, a non-direct exchange, stamped headers, ``task_sent`` receivers);
* one connection and one producer per batch; each queue is declared once, not per message;
* on Redis (and any transport with kombu's batch publishing, kombu 5.7 and later) the batch is
  one pipeline, in which the messages bound for one queue go as a single ``LPUSH``; with an
  older kombu each message is written as it is published;
* on RabbitMQ the channel is in publisher-confirm mode: a window of messages is written, then
  their acknowledgements are awaited together. A message the broker nacks (a full queue with
  ``x-overflow: reject-publish``), returns as unroutable, or leaves unconfirmed when the connection
  fails or :data:`CONFIRM_TIMEOUT` passes is reported as unsent, so its claim is released and
  never committed (at-least-once);
* the result backend is not told about the task (beat never waits for results; Celery's Redis
  backend would otherwise subscribe to every task id beat sends).

The publisher keeps its own broker connection (``app.connection_for_write()``), connects on the
first batch, drops the connection after any failure and reconnects on the next batch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from celery import Celery, signals
from celery.app.amqp import task_message
from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from celery.utils.time import maybe_make_aware
from kombu.entity import Queue
from kombu.messaging import Producer

from celery_pyncette import ids

logger = logging.getLogger("celery_pyncette.publish")

#: Messages written before their publisher confirms are awaited (RabbitMQ).
CONFIRM_WINDOW = 100
#: Longest wait for the confirms of one window; the unconfirmed messages are then unsent.
CONFIRM_TIMEOUT = 10.0
#: Seconds a socket write to the broker may block.
PUBLISH_TIMEOUT = 10.0

#: Celery's deprecated ``task_sent`` signal, which ``send_task_message`` sends (if it exists).
_LEGACY_SENT = getattr(signals, "task_sent", None)
#: Execution options of a task that Celery hands to ``create_task_message`` as arguments.
_LIMIT_OPTIONS = ("time_limit", "soft_time_limit", "expires")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One task message to send."""

    task: str
    kwargs: Mapping[str, Any]
    headers: Mapping[str, Any]
    args: Sequence[Any] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Built:
    """A message built by Celery's factory, ready for ``send_task_message``."""

    index: int
    task_id: str
    name: str
    message: Any
    #: The routed execution options (read-only: one dict may serve a whole batch).
    options: Mapping[str, Any]
    #: Where and how it goes, resolved once per batch; ``None``: through ``send_task_message``.
    route: _Route | None = None


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
class _Route:
    """The ``producer.publish`` arguments ``send_task_message`` derives from a task's options,
    worked out once for a batch whose messages all share them (Celery 5's rules: a direct
    exchange publishes to the queue by name through the default exchange)."""

    exchange: str
    routing_key: str
    serializer: str
    compression: str | None
    delivery_mode: int
    properties: dict[str, Any]
    retry_policy: dict[str, Any]

    @classmethod
    def of(cls, app: Celery, options: Mapping[str, Any]) -> _Route | None:
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


class _Confirms:
    """Publisher-confirm bookkeeping of one AMQP channel (delivery tags count from 1)."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, int] = {}  # delivery tag -> message index
        self.by_task_id: dict[str, int] = {}  # task id -> message index, for returned messages
        self.refused: set[int] = set()  # message indexes nacked or returned
        self.returned = False

    def expect(self, index: int, task_id: str) -> None:
        self.pending[self.next_tag] = index
        self.by_task_id[task_id] = index
        self.next_tag += 1

    def settle(self, delivery_tag: int, multiple: bool, accepted: bool) -> None:
        tags = [t for t in self.pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            index = self.pending.pop(tag, None)
            if index is not None and not accepted:
                self.refused.add(index)

    def on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self.settle(delivery_tag, multiple, accepted=True)

    def on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.settle(delivery_tag, multiple, accepted=False)

    def on_return(self, _exc: Any, _exchange: Any, _routing_key: Any, message: Any) -> None:
        properties = getattr(message, "properties", None) or {}
        index = self.by_task_id.get(properties.get("correlation_id", ""))
        if index is not None:
            self.refused.add(index)
        self.returned = True

    def take_refused(self) -> set[int]:
        """The indexes refused since the last call; forgets the window's task ids."""
        refused, self.refused = self.refused, set()
        self.by_task_id.clear()
        return refused


class _Template:
    """What ``app.send_task`` works out per task before building a message, done once per batch.

    The task's own execution options (queue, priority, expires, time limits, ...) are the
    defaults and the message's options override them; the router picks the queue (per message
    when ``task_routes`` is set, since a router may look at the arguments).
    """

    def __init__(self, app: Celery, name: str, message_options: Mapping[str, Any]) -> None:
        self.app = app
        self.amqp = app.amqp
        self.name = name
        self.task_type = app._tasks.get(name)
        options: dict[str, Any] = {}
        get_exec_options = getattr(self.task_type, "_get_exec_options", None)
        if callable(get_exec_options):
            options = {k: v for k, v in (get_exec_options() or {}).items() if v is not None}
        options.update(message_options)
        self.time_limit, self.soft_time_limit, self.expires = (
            options.pop(key, None) for key in _LIMIT_OPTIONS
        )
        self.ignore_result = options.pop("ignore_result", None)
        if self.expires is not None:
            options["expiration"] = max(0.0, _seconds_until(app, self.expires))
        # mandatory is ours to set (RabbitMQ returns unroutable messages); immediate is obsolete
        options.pop("mandatory", None)
        options.pop("immediate", None)
        self.options = options
        self.routed: dict[str, Any] | None = None
        if not self.amqp.router.routes:
            self.routed = self.amqp.router.route(dict(options), name, (), {}, self.task_type)
        self.reply_to = app.thread_oid
        self.sent_event = app.conf.task_send_sent_event
        self.max_levels = app.conf.task_repr_maxlevels
        self.origin = anon_nodename()
        self._args: Any = None  # the last positional arguments seen, and their repr
        self._args_repr: str | None = None
        # Copies of one prototype message stand for the factory's output where only the id and
        # the keyword arguments can differ: protocol 2, and no task-sent event (which holds both).
        self.templated = app.conf.task_protocol == 2 and not self.sent_event
        self._prototype: _Prototype | None = None
        self.route: _Route | None = None
        if self.routed is not None and self.templated and "stamped_headers" not in self.routed:
            self.route = _Route.of(app, self.routed)

    def build(self, index: int, message: OutgoingMessage, task_id: str) -> _Built:
        """One message, as ``app.send_task(name, args, kwargs, headers=..., task_id=...,
        **options)``."""
        amqp = self.amqp
        if message.args is not self._args:  # usually one tuple for a whole batch
            self._args = message.args
            self._args_repr = plain_repr(
                tuple(message.args), amqp.argsrepr_maxsize, self.max_levels
            )
            self._prototype = None
        args = tuple(message.args)
        kwargs = message.kwargs if type(message.kwargs) is dict else dict(message.kwargs)
        if self.routed is not None:
            options = self.routed  # read-only from here on: shared by the batch's messages
        else:
            options = amqp.router.route(dict(self.options), self.name, args, kwargs, self.task_type)
        kwargs_repr = plain_repr(kwargs, amqp.kwargsrepr_maxsize, self.max_levels)
        if kwargs_repr is None:
            kwargs_repr = saferepr(kwargs, amqp.kwargsrepr_maxsize, maxlevels=self.max_levels)
        stamped = "stamped_headers" in options
        if self._prototype is None and self.templated and not stamped:
            self._prototype = _Prototype(self._create(_PROTOTYPE_ID, args, {}, options))
        if self._prototype is None or stamped:
            options = {**options, "headers": dict(message.headers)}
            task_message = self._create(task_id, args, kwargs, options, kwargs_repr)
            for stamp in options.pop("stamped_headers", None) or ():
                options.pop(stamp, None)
            return _Built(index, task_id, self.name, task_message, options)
        task_message = self._prototype.instance(task_id, args, kwargs, kwargs_repr)
        task_message.headers.update(message.headers)
        return _Built(index, task_id, self.name, task_message, options, self.route)

    def _create(
        self,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Mapping[str, Any],
        kwargs_repr: str = "{}",
    ) -> Any:
        """Celery's message factory, called as ``app.send_task`` calls it."""
        return self.amqp.create_task_message(
            task_id,
            self.name,
            args,
            kwargs,
            None,  # countdown
            None,  # eta
            None,  # group_id
            None,  # group_index
            self.expires,
            0,  # retries
            None,  # chord
            None,  # link
            None,  # link_error
            self.reply_to,
            self.time_limit,
            self.soft_time_limit,
            self.sent_event,
            None,  # root_id
            None,  # parent_id
            None,  # shadow
            None,  # chain
            ignore_result=self.ignore_result,
            replaced_task_nesting=0,
            origin=self.origin,
            argsrepr=self._args_repr,
            kwargsrepr=kwargs_repr,
            **options,
        )


#: The task id a prototype message is built with; no real id equals it.
_PROTOTYPE_ID = "celery-pyncette-prototype-" + uuid.uuid4().hex


class _Prototype:
    """A message Celery's factory built once per batch, copied for each message of the batch.

    Within one batch only the task id, the keyword arguments and their repr differ between the
    messages of a task (protocol 2, no sent event): each copy takes the prototype's headers and
    properties, with every value that held the prototype's id set to the new id.
    """

    def __init__(self, prototype: Any) -> None:
        self.headers: dict[str, Any] = prototype.headers
        self.properties: dict[str, Any] = prototype.properties
        self.embed = prototype.body[2]
        self.id_headers = [k for k, v in self.headers.items() if v == _PROTOTYPE_ID]
        self.id_properties = [k for k, v in self.properties.items() if v == _PROTOTYPE_ID]

    def instance(
        self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], kwargs_repr: str
    ) -> Any:
        """The message for ``task_id`` with these arguments (``args`` are the prototype's)."""
        headers = self.headers.copy()
        for key in self.id_headers:
            headers[key] = task_id
        headers["kwargsrepr"] = kwargs_repr
        properties = self.properties.copy()
        for key in self.id_properties:
            properties[key] = task_id
        return task_message(headers, properties, (args, kwargs, self.embed), None)


class Publisher:
    """Sends batches of task messages over one connection and one producer per batch.

    Not shared between threads in practice (one per beat), but safe if it is: batches are sent
    one at a time. Call :meth:`close` to release the broker connection.
    """

    def __init__(
        self,
        app: Celery,
        *,
        confirm_window: int = CONFIRM_WINDOW,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        if confirm_window < 1:
            raise ValueError(f"confirm_window must be at least 1, got {confirm_window!r}")
        self.app = app
        self.confirm_window = confirm_window
        self.confirm_timeout = confirm_timeout
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = 0
        self._channel: Any = None
        self._confirms: _Confirms | None = None

    # --- the public face ----------------------------------------------------------------------

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Send ``messages`` in order; return the indexes of those not accepted by the broker.

        Never raises: a broker failure is logged once per batch and reported as unsent indexes.
        """
        if not messages:
            return []
        with self._lock:
            built, unsent = self._build_all(messages)
            if built:
                unsent.extend(self._send(built))
        return sorted(unsent)

    def close(self) -> None:
        """Close the broker connection (idempotent); the next batch opens a new one."""
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- building messages --------------------------------------------------------------------

    def _build_all(self, messages: Sequence[OutgoingMessage]) -> tuple[list[_Built], list[int]]:
        built: list[_Built] = []
        failed: list[int] = []
        first_error: Exception | None = None
        templates: dict[tuple[str, int], _Template] = {}
        for index, (message, task_id) in enumerate(
            zip(messages, ids.task_ids(len(messages)), strict=True)
        ):
            try:
                key = (message.task, id(message.options) if message.options else 0)
                template = templates.get(key)
                if template is None:
                    template = templates[key] = _Template(self.app, message.task, message.options)
                built.append(template.build(index, message, task_id))
            except Exception as exc:
                failed.append(index)
                first_error = first_error or exc
        if first_error is not None:
            logger.error(
                "%d of %d message(s) could not be built: %s: %s",
                len(failed),
                len(messages),
                type(first_error).__name__,
                first_error,
            )
        return built, failed

    # --- sending ------------------------------------------------------------------------------

    def _send(self, built: list[_Built]) -> list[int]:
        """Publish built messages; return the indexes not accepted. Never raises."""
        done: set[int] = set()  # sent for sure, should a transport without batches fail part-way
        try:
            connection = self._connect()
            if _supports_confirms(connection):
                return self._send_confirmed(connection, built)
            channel = connection.default_channel
            producer = Producer(channel, auto_declare=False)  # type: ignore[no-untyped-call]
            self._declare(producer, built)
            if getattr(producer, "supports_batch_publish", False):  # kombu >= 5.7
                _merge_pushes(channel)
                # one pipeline: every message is written at the batch's end, or none is
                with producer.batch(max_size=16 * len(built) + 1):  # type: ignore[no-untyped-call]
                    for item in built:
                        self._publish_one(producer, item)
                return []
            for item in built:
                self._publish_one(producer, item)
                done.add(item.index)
            return []
        except Exception as exc:
            self._drop_connection()
            unsent = [item.index for item in built if item.index not in done]
            _log_failure(exc, len(unsent), len(built))
            return unsent

    def _send_confirmed(self, connection: Any, built: list[_Built]) -> list[int]:
        """Publish in confirm windows; return the indexes nacked, returned or unconfirmed."""
        accepted: set[int] = set()
        refused: set[int] = set()
        try:
            channel, confirms = self._confirm_channel(connection)
            producer = Producer(channel, auto_declare=False)  # type: ignore[no-untyped-call]
            self._declare(producer, built)
            for start in range(0, len(built), self.confirm_window):
                window = built[start : start + self.confirm_window]
                for item in window:
                    confirms.expect(item.index, item.task_id)
                    self._publish_one(producer, item, mandatory=True)
                self._await_confirms(connection, confirms)
                refused |= confirms.take_refused()
                accepted.update(item.index for item in window if item.index not in refused)
        except Exception as exc:
            self._drop_connection()
            unsent = [item.index for item in built if item.index not in accepted]
            _log_failure(exc, len(unsent), len(built))
            return unsent
        if refused:
            logger.error(
                "the broker refused %d of %d message(s) (nacked or unroutable)",
                len(refused),
                len(built),
            )
        if confirms.returned:
            # an unroutable message may mean that a queue vanished: declare again next batch
            confirms.returned = False
            connection.declared_entities.clear()
        return sorted(refused)

    def _publish_one(self, producer: Producer, item: _Built, **extra: Any) -> None:
        """What Celery's ``send_task_message`` does; the queues were declared for the batch.

        A message with a route is published directly, with Celery's publish signals sent as
        ``send_task_message`` sends them (it would spend as long again as the rest of beat's
        work per message working out the same route for every message of a batch).
        """
        route = item.route
        if route is None or (_LEGACY_SENT is not None and _LEGACY_SENT.receivers):
            self.app.amqp.send_task_message(
                producer,
                item.name,
                item.message,
                declare=[],
                retry=False,
                timeout=PUBLISH_TIMEOUT,
                **extra,
                **item.options,
            )
            return
        headers, properties, body, _ = item.message
        properties.update(route.properties)
        if signals.before_task_publish.receivers:
            signals.before_task_publish.send(
                sender=item.name,
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
                sender=item.name,
                body=body,
                headers=headers,
                exchange=route.exchange,
                routing_key=route.routing_key,
            )

    def _await_confirms(self, connection: Any, confirms: _Confirms) -> None:
        """Read acks and nacks until none is pending; ``TimeoutError`` after ``confirm_timeout``."""
        deadline = time.monotonic() + self.confirm_timeout
        while confirms.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{len(confirms.pending)} publisher confirm(s) not received within "
                    f"{self.confirm_timeout}s"
                )
            connection.drain_events(timeout=remaining)

    def _declare(self, producer: Producer, built: Iterable[_Built]) -> None:
        """Declare each distinct queue of the batch once (kombu caches it per connection)."""
        seen: set[str] = set()
        for item in built:
            queue = item.options.get("queue")
            if isinstance(queue, str):
                queue = self.app.amqp.queues[queue]
            if not isinstance(queue, Queue) or queue.name in seen:
                continue
            seen.add(queue.name)
            if not getattr(queue, "no_declare", False) and type(queue).__name__ != "Broadcast":
                producer.maybe_declare(queue)  # type: ignore[no-untyped-call]

    # --- the connection -----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._connection is not None and self._pid != os.getpid():
            self._connection = self._channel = self._confirms = None  # a forked copy: not ours
        if self._connection is None:
            # per-message confirms (transport option confirm_publish) would wait once per message
            connection = self.app.connection_for_write(transport_options={"confirm_publish": False})
            try:
                # one quick retry, then the batch is reported unsent: beat retries next tick
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1)
            except Exception:
                connection.release()
                raise
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _confirm_channel(self, connection: Any) -> tuple[Any, _Confirms]:
        if self._channel is None or self._confirms is None:
            channel = connection.channel()
            confirms = _Confirms()
            channel.events["basic_ack"].add(confirms.on_ack)
            channel.events["basic_nack"].add(confirms.on_nack)
            channel.events["basic_return"].add(confirms.on_return)
            channel.confirm_select()
            self._channel, self._confirms = channel, confirms
        return self._channel, self._confirms

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._confirms = None
        if connection is None or self._pid != os.getpid():
            return
        try:
            connection.release()
        except Exception:
            logger.debug("closing the broker connection failed", exc_info=True)


class _MergedPushes:
    """Stands in for the pipeline of kombu's Redis publish batch, turning consecutive ``LPUSH``
    commands to one list into one ``LPUSH`` of all their values.

    ``LPUSH key a`` then ``LPUSH key b`` and ``LPUSH key a b`` leave the same list (the values go
    in one after another), so the messages arrive exactly as before; Redis then parses, and the
    client packs and reads, one command per queue and batch instead of one per message. Any other
    command (``PEXPIRE`` of an expiring queue, ``PUBLISH`` of a fanout) is queued after the pushes
    before it, in order.
    """

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self._key: Any = None
        self._values: list[Any] = []

    def lpush(self, key: Any, *values: Any) -> None:
        if key != self._key:
            self._queue_pushes()
            self._key = key
        self._values.extend(values)

    def execute(self) -> Any:
        self._queue_pushes()
        return self._pipeline.execute()

    def reset(self) -> None:
        self._key, self._values = None, []
        self._pipeline.reset()

    def _queue_pushes(self) -> None:
        if self._values:
            self._pipeline.lpush(self._key, *self._values)
        self._key, self._values = None, []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._pipeline, name)
        if not callable(attribute):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            self._queue_pushes()
            return attribute(*args, **kwargs)

        return command


def _merge_pushes(channel: Any) -> None:
    """Make the publish batches of a kombu Redis ``channel`` merge their pushes (see
    :class:`_MergedPushes`); other channels, and a batch without a Redis pipeline, are left as
    they are."""
    create_batch = getattr(channel, "create_publish_batch", None)
    if create_batch is None or getattr(create_batch, "merges_pushes", False):
        return

    def create_publish_batch(max_size: int) -> Any:
        batch = create_batch(max_size)
        pipeline = getattr(batch, "pipeline", None)
        if callable(getattr(pipeline, "lpush", None)):
            batch.pipeline = _MergedPushes(pipeline)
        return batch

    create_publish_batch.merges_pushes = True  # type: ignore[attr-defined]
    channel.create_publish_batch = create_publish_batch


def _supports_confirms(connection: Any) -> bool:
    """True for py-amqp, whose channels speak RabbitMQ's publisher confirms."""
    return getattr(connection.transport, "driver_name", None) == "py-amqp"


def _log_failure(exc: Exception, unsent: int, total: int) -> None:
    logger.error(
        "publishing failed; %d of %d message(s) not accepted by the broker: %s: %s",
        unsent,
        total,
        type(exc).__name__,
        exc,
    )


def _seconds_until(app: Celery, expires: Any) -> float:
    """``expires`` (seconds, a datetime or an ISO string) as seconds from now, as Celery does."""
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires)
    if isinstance(expires, datetime):
        # A naive time is UTC (Celery 5.6+ does the same; 5.5 has no helper for it).
        elapsed = maybe_make_aware(expires).astimezone(timezone.utc) - app.now().astimezone(
            timezone.utc
        )
        return float(elapsed.total_seconds())
    return float(expires)


def plain_repr(value: Any, max_length: int, max_levels: int) -> str | None:
    """``repr(value)`` when it equals Celery's ``saferepr`` for it, else ``None``.

    Celery's message factory calls ``saferepr`` for the ``argsrepr`` / ``kwargsrepr`` headers;
    for the plain JSON values a schedule carries (short, printable strings without quotes or
    backslashes, numbers, ``None``, lists, tuples and dicts nested at most ``max_levels`` deep) the
    built-in ``repr`` gives the same text an order of magnitude faster. ``None`` lets Celery
    compute it.
    """
    if not _plain(value, max_levels):
        return None
    text = repr(value)
    return text if len(text) < max_length else None


def _plain(value: Any, levels: int) -> bool:
    kind = type(value)
    if kind is str:
        return "'" not in value and "\\" not in value and value.isprintable()
    if value is None or kind is int or kind is float or kind is bool:
        return True
    if levels <= 0:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain(key, 0) or not _plain(item, levels - 1):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_plain(item, levels - 1) for item in value)
    return False
