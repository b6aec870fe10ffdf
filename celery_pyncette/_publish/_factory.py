"""The factory emulation: Celery's own message factory, driven once per task and batch.

This is the only module that touches Celery's private API, and ``_guard`` imports it only on
the Celery and kombu releases it was verified on. Each message is what ``app.send_task``
would build: ``app.amqp.create_task_message``, routed by ``app.amqp.router``, with the task's
execution options merged in as ``send_task`` merges them. What differs from ``send_task`` per
message:

* the factory builds one prototype per task and batch, and each message is a copy of it with its
  own id and keyword arguments (the only parts that differ, with protocol 2 and no task-sent
  events; otherwise the factory builds every message);
* the route is worked out once per batch (``_routing``), and a message goes straight to the
  producer, or to ``send_task_message`` when the route needs it (``task_routes``, a named or
  non-direct exchange, stamped headers, ``task_sent`` receivers);
* the result backend is not told about the task (beat never waits for results; Celery's Redis
  backend would otherwise subscribe to every task id beat sends).

A task whose options name something only ``send_task`` knows how to apply (``countdown``,
``eta``, ``link``, ...) is sent by the plain path (``_plain``) instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from celery import Celery, signals
from celery.app.amqp import task_message
from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from celery.utils.time import maybe_make_aware
from kombu.messaging import Producer

from celery_pyncette._publish._message import PUBLISH_TIMEOUT, OutgoingMessage, Sendable
from celery_pyncette._publish._plain import PlainSend
from celery_pyncette._publish._repr import plain_repr
from celery_pyncette._publish._routing import Route, publish_routed

#: What the emulation reads of Celery beyond its documented API: attributes of ``app.amqp``,
#: of the app, and of task classes (checked by ``_guard`` before the emulation is used).
AMQP_ATTRIBUTES = (
    "create_task_message",
    "send_task_message",
    "router",
    "queues",
    "default_queue",
    "argsrepr_maxsize",
    "kwargsrepr_maxsize",
)
APP_ATTRIBUTES = ("_tasks", "thread_oid", "now")
TASK_ATTRIBUTES = ("_get_exec_options",)

#: Celery's deprecated ``task_sent`` signal, which ``send_task_message`` sends (if it exists).
_LEGACY_SENT = getattr(signals, "task_sent", None)
#: Execution options of a task that Celery hands to ``create_task_message`` as arguments.
_LIMIT_OPTIONS = ("time_limit", "soft_time_limit", "expires")
#: ``send_task`` arguments that shape a message and that the emulation does not apply: a task
#: given one goes the plain path.
_SEND_TASK_ONLY = frozenset(
    {
        "countdown", "eta", "link", "link_error", "group_id", "group_index", "retries",
        "chord", "reply_to", "root_id", "parent_id", "route_name", "shadow", "chain",
        "task_type", "replaced_task_nesting", "router", "argsrepr", "kwargsrepr", "origin",
    }
)  # fmt: skip
#: The task id a prototype message is built with; no real id equals it.
_PROTOTYPE_ID = "celery-pyncette-prototype-" + uuid.uuid4().hex


@dataclass(slots=True)
class _Built:
    """A message built by Celery's factory."""

    index: int
    task_id: str
    template: _Template
    message: Any
    #: The routed execution options (read-only: one dict may serve a whole batch).
    options: Mapping[str, Any]
    #: Where and how it goes, resolved once per batch; ``None``: through ``send_task_message``.
    route: Route | None = None

    def queue(self) -> Any:
        queue = self.options.get("queue")
        return self.template.amqp.queues[queue] if isinstance(queue, str) else queue

    def publish(self, producer: Producer, **extra: Any) -> None:
        """What Celery's ``send_task_message`` does; the queues were declared for the batch."""
        route = self.route
        if route is None or (_LEGACY_SENT is not None and _LEGACY_SENT.receivers):
            self.template.amqp.send_task_message(
                producer,
                self.template.name,
                self.message,
                declare=[],
                retry=False,
                timeout=PUBLISH_TIMEOUT,
                **extra,
                **self.options,
            )
            return
        publish_routed(producer, self.template.name, self.message, route, extra)


class Factory:
    """Builds the messages of a batch, one :class:`_Template` per task and options."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def build(
        self, messages: Sequence[OutgoingMessage], task_ids: Sequence[str]
    ) -> tuple[list[Sendable], list[int], Exception | None]:
        """The sendables, the indexes that could not be built, and the first build error."""
        built: list[Sendable] = []
        failed: list[int] = []
        first_error: Exception | None = None
        templates: dict[tuple[str, int], _Template] = {}
        for index, (message, task_id) in enumerate(zip(messages, task_ids, strict=True)):
            try:
                key = (message.task, id(message.options) if message.options else 0)
                template = templates.get(key)
                if template is None:
                    template = templates[key] = _Template(self.app, message.task, message.options)
                built.append(template.build(index, message, task_id))
            except Exception as exc:
                failed.append(index)
                first_error = first_error or exc
        return built, failed, first_error


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
        #: Options only ``send_task`` applies: every message of the task goes the plain path.
        self.plain = not _SEND_TASK_ONLY.isdisjoint(options)
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
        if not self.amqp.router.routes and not self.plain:
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
        self.route: Route | None = None
        if self.routed is not None and self.templated and "stamped_headers" not in self.routed:
            self.route = Route.of(app, self.routed)

    def build(self, index: int, message: OutgoingMessage, task_id: str) -> Sendable:
        """One message, as ``app.send_task(name, args, kwargs, headers=..., task_id=...,
        **options)``."""
        if self.plain:
            return PlainSend(self.app, index, task_id, message)
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
            built = self._create(task_id, args, kwargs, options, kwargs_repr)
            for stamp in options.pop("stamped_headers", None) or ():
                options.pop(stamp, None)
            return _Built(index, task_id, self, built, options)
        built = self._prototype.instance(task_id, args, kwargs, kwargs_repr)
        built.headers.update(message.headers)
        return _Built(index, task_id, self, built, options, self.route)

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
