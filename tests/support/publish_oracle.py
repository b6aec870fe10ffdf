"""The oracle of the publish tests: the fast path must write what ``app.send_task`` writes.

Each :class:`Case` sets up an app (task options, queues, routes, configuration) and names the
messages of one batch. :func:`assert_fast_equals_plain` publishes the batch with the fast
publisher, then with the plain one (``Publisher(app, plain=True)``: every message through
``app.send_task``), with the same task ids, and compares every message as the broker holds it:
headers, properties, raw body, content type and encoding, exchange and routing key. The unit
tests run the cases on kombu's memory transport, the e2e tests on Redis and RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery
from kombu import Exchange, Queue

from celery_pyncette import _ids as ids
from celery_pyncette._publish import OutgoingMessage, Publisher
from tests.support.messages import take_waiting

PYNCETTE = {"v": 1, "task": "oracle.job", "lease": "l-1", "partition": 0}
#: What a transport adds to a message's properties: its tag, the headers again (py-amqp).
_NOT_PROPERTIES = ("delivery_tag", "application_headers")
#: Header values and properties counted from the moment a message is built.
TIMED_HEADERS = ("eta", "expires")


@dataclass(frozen=True)
class Case:
    """A batch and the app it is sent from; ``prefix`` makes its queue names unique."""

    name: str
    #: Configures ``app`` and returns the batch and the queues its messages land on.
    setup: Callable[[Celery, str], tuple[list[OutgoingMessage], list[str]]]
    #: True where the fast path itself hands the task to ``send_task`` (countdown, eta).
    delegated: bool = False
    #: True where a time counted from the build is in the message (with protocol 1, in the body).
    timed: bool = False


def _task(app: Celery, name: str = "oracle.job", **options: Any) -> None:
    @app.task(name=name, shared=False, **options)
    def job(*args: Any, **kwargs: Any) -> None: ...

    assert name in app.tasks  # finalized: the task's options now apply


def _default_queue(app: Celery) -> str:
    return str(app.conf.task_default_queue)


def _plain_arguments(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    _task(app)
    kwargs = [
        {"user_id": n, "name": "bill", "ratio": 0.5, "tags": ["a"], "x": None} for n in (1, 2)
    ]
    messages = [OutgoingMessage("oracle.job", k, {"pyncette": PYNCETTE}, (1, "a")) for k in kwargs]
    return messages, [_default_queue(app)]


def _arguments_celery_reprs(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    _task(app)
    batch = [
        {"text": "line\nbreak 'quoted'", "deep": {"a": {"b": {"c": {"d": 1}}}}},
        {"long": "x" * 5000},
        {},
    ]
    messages = [OutgoingMessage("oracle.job", k, {"pyncette": PYNCETTE}) for k in batch]
    return messages, [_default_queue(app)]


def _task_options(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    _task(
        app,
        priority=3,
        time_limit=30,
        soft_time_limit=20,
        serializer="pickle",
        compression="zlib",
        delivery_mode=1,
        ignore_result=True,
    )
    messages = [OutgoingMessage("oracle.job", {"n": n}, {"pyncette": PYNCETTE}) for n in range(3)]
    return messages, [_default_queue(app)]


def _message_options(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    _task(app, priority=3)
    other = f"{prefix}-other"
    expires = datetime.now(timezone.utc) + timedelta(hours=1)  # one time for both paths
    options = {"priority": 7, "expires": expires, "queue": other}
    headers = {"pyncette": PYNCETTE, "other": "header"}
    messages = [OutgoingMessage("oracle.job", {"n": n}, headers, (), options) for n in range(3)]
    return messages, [other]


def _expires_in_seconds(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    messages = [OutgoingMessage("oracle.job", {"n": 1}, {}, options={"expires": 60})]
    return messages, [_default_queue(app)]


def _exchange_and_routing_key(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    queue = Queue(f"{prefix}-routed", Exchange(f"{prefix}-x"), routing_key=f"{prefix}-key")
    app.conf.task_queues = [Queue(_default_queue(app)), queue]
    with app.connection_for_write() as connection:  # routed by exchange: the queue is not declared
        queue(connection.default_channel).declare()
    options = {"exchange": f"{prefix}-x", "routing_key": f"{prefix}-key"}
    messages = [OutgoingMessage("oracle.job", {"n": n}, {}, options=options) for n in range(2)]
    return messages, [queue.name]


def _topic_exchange(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    queue = Queue(f"{prefix}-topic", Exchange(f"{prefix}-t", type="topic"), routing_key="oracle.#")
    app.conf.update(task_queues=[queue], task_default_queue=queue.name)
    return [OutgoingMessage("oracle.job", {"n": n}, {}) for n in range(2)], [queue.name]


def _task_routes(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    app.conf.task_routes = {"oracle.routed": {"queue": f"{prefix}-routes"}}
    messages = [OutgoingMessage("oracle.routed", {"n": n}, {}) for n in range(2)]
    return messages, [f"{prefix}-routes"]


def _router_on_arguments(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    def by_parity(name: str, args: Any, kwargs: Any, options: Any, **_: Any) -> dict[str, str]:
        return {"queue": f"{prefix}-{'odd' if kwargs['n'] % 2 else 'even'}"}

    app.conf.task_routes = [by_parity]
    messages = [OutgoingMessage("oracle.job", {"n": n}, {}) for n in range(4)]
    return messages, [f"{prefix}-even", f"{prefix}-odd"]


def _several_tasks(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    _task(app, priority=2)
    _task(app, "oracle.other", time_limit=5)
    messages = [
        OutgoingMessage(name, {"n": n}, {"pyncette": {**PYNCETTE, "n": n}}, options=options)
        for n, (name, options) in enumerate(
            [("oracle.job", {}), ("oracle.other", {"priority": 1}), ("oracle.job", {})] * 2
        )
    ]
    return messages, [_default_queue(app)]


def _countdown(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    return [OutgoingMessage("oracle.job", {"n": 1}, {}, options={"countdown": 30})], [
        _default_queue(app)
    ]


def _eta(app: Celery, prefix: str) -> tuple[list[OutgoingMessage], list[str]]:
    eta = datetime.now(timezone.utc) + timedelta(minutes=5)
    return [OutgoingMessage("oracle.job", {"n": 1}, {}, options={"eta": eta})], [
        _default_queue(app)
    ]


#: The cases every broker runs.
CASES = [
    Case("plain-arguments", _plain_arguments),
    Case("arguments-with-celery-reprs", _arguments_celery_reprs),
    Case("task-options", _task_options),
    Case("message-options", _message_options),
    Case("expires-in-seconds", _expires_in_seconds, timed=True),
    Case("exchange-and-routing-key", _exchange_and_routing_key),
    Case("topic-exchange", _topic_exchange),
    Case("task-routes", _task_routes),
    Case("router-on-arguments", _router_on_arguments),
    Case("several-tasks", _several_tasks),
    Case("countdown", _countdown, delegated=True, timed=True),
    Case("eta", _eta, delegated=True, timed=True),
]


def read(app: Celery, queue: str) -> list[dict[str, Any]]:
    """Every message waiting on ``queue`` as the broker holds it (the queue is left empty)."""
    return [
        {
            "headers": dict(message.headers),
            "properties": {k: v for k, v in message.properties.items() if k not in _NOT_PROPERTIES},
            "body": message.body,
            "content_type": message.content_type,
            "content_encoding": message.content_encoding,
            "routing": {k: message.delivery_info.get(k) for k in ("exchange", "routing_key")},
        }
        for message in take_waiting(app, queue)
    ]


@contextmanager
def same_task_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every batch gets the same task ids, so the two paths' messages can be compared."""
    fixed = ids.task_ids(100)
    with monkeypatch.context() as patch:
        patch.setattr(ids, "task_ids", lambda count: fixed[:count])
        yield


def assert_fast_equals_plain(
    app: Celery, case: Case, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publish ``case`` both ways and compare what the broker holds, message by message."""
    messages, queues = case.setup(app, prefix)
    sent_by_celery: list[str] = []
    real_send_task = app.send_task

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        sent_by_celery.append(name)
        return real_send_task(name, *args, **kwargs)

    with same_task_ids(monkeypatch):
        with monkeypatch.context() as spy, Publisher(app) as fast:
            spy.setattr(app, "send_task", counted)
            assert fast.publish(messages) == []
        ours = [read(app, queue) for queue in queues]
        with Publisher(app, plain=True) as plain:
            assert plain.publish(messages) == []
        oracle = [read(app, queue) for queue in queues]

    assert bool(sent_by_celery) == case.delegated  # the fast path built its own messages
    assert sum(map(len, ours)) == len(messages)
    for got, expected in zip(ours, oracle, strict=True):
        assert len(got) == len(expected)
        for mine, celerys in zip(got, expected, strict=True):
            _align_timed_values(mine, celerys)
            assert mine == celerys, (mine, celerys)


def _align_timed_values(mine: dict[str, Any], celerys: dict[str, Any]) -> None:
    """Times counted from each message's build agree within seconds; then they are set equal."""
    ttl = mine["properties"].get("expiration"), celerys["properties"].get("expiration")
    if ttl[0] is not None and ttl[1] is not None:
        assert abs(int(ttl[0]) - int(ttl[1])) < 5_000
        mine["properties"]["expiration"] = celerys["properties"]["expiration"]
    for key in TIMED_HEADERS:
        values = mine["headers"].get(key), celerys["headers"].get(key)
        if isinstance(values[0], str) and isinstance(values[1], str):
            apart = datetime.fromisoformat(values[0]) - datetime.fromisoformat(values[1])
            assert abs(apart.total_seconds()) < 5
            mine["headers"][key] = celerys["headers"][key]
