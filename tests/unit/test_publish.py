"""The publisher: messages equal to what ``app.send_task`` sends, and unsent ones reported.

kombu's memory transport is the broker here; RabbitMQ's confirms and a real worker consuming
published messages are in ``tests/e2e/test_publish_*.py``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery
from celery.signals import after_task_publish, before_task_publish
from celery.utils.saferepr import saferepr
from hypothesis import given
from hypothesis import strategies as st
from kombu import Exchange, Producer, Queue

from celery_pyncette._publish import OutgoingMessage, Publisher, plain_repr
from tests.support.messages import take_waiting

Received = dict[str, Any]

EXPIRES = datetime(2031, 1, 1, tzinfo=timezone.utc)


def received(app: Celery, queue: str | None = None) -> list[Received]:
    """Every message waiting on ``queue`` (default: the app's default queue), in order."""
    return [
        {
            "headers": dict(message.headers),
            "properties": {k: v for k, v in message.properties.items() if k != "delivery_tag"},
            "body": message.decode(),
            "routing": {k: message.delivery_info.get(k) for k in ("exchange", "routing_key")},
            "content_type": message.content_type,
        }
        for message in take_waiting(app, queue)
    ]


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Task ids the publisher hands out, in order (so a message can be compared by id)."""
    ids = [str(uuid.uuid4()) for _ in range(10)]
    queue = list(ids)
    monkeypatch.setattr("celery_pyncette._ids.task_ids", lambda n: [queue.pop(0) for _ in range(n)])
    return ids


@pytest.fixture(params=[False, True], ids=["fast", "plain"])
def publisher(app: Celery, request: pytest.FixtureRequest) -> Any:
    """The fast publisher, and the plain one (every message through ``app.send_task``)."""
    with Publisher(app, plain=request.param) as made:
        yield made


def declare_task(app: Celery) -> None:
    @app.task(name="unit.job", priority=3, time_limit=30, soft_time_limit=20, shared=False)
    def job(**kwargs: Any) -> None: ...

    assert "unit.job" in app.tasks  # finalized: the task's options now apply


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": 42, "name": "bill", "ratio": 0.5, "tags": ["a", "b"], "none": None},
        # not plain: Celery's saferepr computes the reprs
        {"text": "line\nbreak 'quoted'", "deep": {"a": {"b": {"c": {"d": 1}}}}},
        {"long": "x" * 5000},
    ],
    ids=["plain", "quoted-and-deep", "long"],
)
def test_a_message_equals_what_send_task_sends(
    app: Celery, publisher: Publisher, fixed_ids: list[str], kwargs: dict[str, Any]
) -> None:
    declare_task(app)
    headers = {"pyncette": {"v": 1, "task": "unit.job", "lease": "l-1", "partition": 0}}
    options = {"priority": 7, "expires": EXPIRES}

    unsent = publisher.publish([OutgoingMessage("unit.job", kwargs, headers, (1, "a"), options)])
    app.send_task(
        "unit.job", args=(1, "a"), kwargs=kwargs, headers=headers, task_id=fixed_ids[0], **options
    )

    assert unsent == []
    ours, celerys = received(app)
    # the TTL is counted from the moment each was sent
    ttl = [int(m["properties"].pop("expiration")) for m in (ours, celerys)]
    assert abs(ttl[0] - ttl[1]) < 5_000
    assert ours == celerys
    assert ours["headers"]["pyncette"] == headers["pyncette"]
    assert ours["headers"]["timelimit"] == [30, 20]
    assert ours["properties"]["priority"] == 7
    assert ours["body"][:2] == [[1, "a"], kwargs]


@pytest.mark.parametrize(
    "conf",
    [{}, {"task_send_sent_event": True}, {"task_protocol": 1}],
    ids=["protocol-2", "sent-events", "protocol-1"],
)
def test_every_message_of_a_batch_equals_what_send_task_sends(
    app: Celery, publisher: Publisher, fixed_ids: list[str], conf: dict[str, Any]
) -> None:
    app.conf.update(conf)
    declare_task(app)
    batch = [
        ({"user": 1}, {"pyncette": {"v": 1, "lease": "l-1"}}),
        ({"user": 2, "text": "it's\n"}, {"pyncette": {"v": 1, "lease": "l-2"}}),
        ({}, {}),
        ({"user": 4, "deep": {"a": {"b": {"c": {"d": [1]}}}}}, {"other": "header"}),
    ]
    options = {"priority": 7, "expires": EXPIRES}

    messages = [OutgoingMessage("unit.job", k, h, (1, "a"), options) for k, h in batch]
    assert publisher.publish(messages) == []
    for task_id, (kwargs, headers) in zip(fixed_ids, batch, strict=False):
        app.send_task(
            "unit.job", args=(1, "a"), kwargs=kwargs, headers=headers, task_id=task_id, **options
        )

    got = received(app)
    for message in got:
        message["properties"].pop("expiration")  # counted from the moment each was sent
    ours, celerys = got[: len(batch)], got[len(batch) :]
    assert ours == celerys
    assert len({m["headers"].get("id") or m["body"]["id"] for m in ours}) == len(batch)


def test_the_publish_signals_see_what_send_task_shows_them(
    app: Celery, publisher: Publisher, fixed_ids: list[str]
) -> None:
    declare_task(app)
    seen: list[tuple[str, dict[str, Any]]] = []

    def before(**kwargs: Any) -> None:
        kwargs.pop("signal")
        kwargs.pop("declare")  # the publisher declares each queue once per batch instead
        seen.append(("before", kwargs))

    def after(**kwargs: Any) -> None:
        kwargs.pop("signal")
        seen.append(("after", kwargs))

    before_task_publish.connect(before, weak=False)
    after_task_publish.connect(after, weak=False)
    try:
        headers = {"pyncette": {"v": 1, "lease": "l-1"}}
        assert publisher.publish([OutgoingMessage("unit.job", {"n": 1}, headers)]) == []
        ours, seen[:] = seen[:], []
        app.send_task("unit.job", kwargs={"n": 1}, headers=headers, task_id=fixed_ids[0])
    finally:
        before_task_publish.disconnect(before)
        after_task_publish.disconnect(after)

    assert [name for name, _ in ours] == ["before", "after"]
    assert ours == seen
    assert ours[0][1]["headers"]["pyncette"] == headers["pyncette"]


def test_a_queue_on_a_topic_exchange_is_routed_like_send_task(
    app: Celery, publisher: Publisher, fixed_ids: list[str]
) -> None:
    exchange = Exchange("unit-topic", type="topic")
    app.conf.task_queues = [Queue("unit-topic-q", exchange, routing_key="unit.#")]
    app.conf.task_default_queue = "unit-topic-q"

    assert publisher.publish([OutgoingMessage("unit.job", {"n": 1}, {})]) == []
    app.send_task("unit.job", kwargs={"n": 1}, task_id=fixed_ids[0])

    ours, celerys = received(app, "unit-topic-q")
    assert ours == celerys
    assert ours["routing"] == {"exchange": "unit-topic", "routing_key": "unit.#"}


def test_the_task_queue_and_routes_are_honoured_like_send_task(
    app: Celery, publisher: Publisher, fixed_ids: list[str]
) -> None:
    app.conf.task_routes = {"unit.routed": {"queue": "unit-routed"}}

    unsent = publisher.publish([OutgoingMessage("unit.routed", {"n": 1}, {})])
    app.send_task("unit.routed", kwargs={"n": 1}, task_id=fixed_ids[0])

    assert unsent == []
    assert received(app) == []
    ours, celerys = received(app, "unit-routed")
    assert ours == celerys
    assert ours["routing"]["routing_key"] == "unit-routed"


def test_a_batch_is_sent_in_order_and_nothing_is_reported_unsent(
    app: Celery, publisher: Publisher
) -> None:
    messages = [OutgoingMessage("unit.job", {"n": n}, {"pyncette": {"n": n}}) for n in range(250)]

    assert publisher.publish(messages) == []
    assert publisher.publish(messages[:3]) == []

    sent = [m["body"][1]["n"] for m in received(app)]
    assert sent == [*range(250), 0, 1, 2]


def test_a_kombu_without_batch_publishing_sends_one_message_at_a_time(
    app: Celery, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kombu < 5.7 has no Producer.batch(): its producers lack supports_batch_publish.
    monkeypatch.delattr(Producer, "supports_batch_publish")
    messages = [OutgoingMessage("unit.job", {"n": n}, {"pyncette": {"n": n}}) for n in range(5)]

    assert publisher.publish(messages) == []

    assert [m["body"][1]["n"] for m in received(app)] == list(range(5))


def test_a_message_that_cannot_be_built_is_unsent_and_the_others_go(
    app: Celery, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    app.conf.task_create_missing_queues = False
    good = OutgoingMessage("unit.job", {"n": 1}, {})
    nowhere = OutgoingMessage("unit.job", {"n": 2}, {}, options={"queue": "not-declared"})

    with caplog.at_level(logging.ERROR, "celery_pyncette.publish"):
        unsent = publisher.publish([good, nowhere, good])

    assert unsent == [1]
    assert [m["body"][1]["n"] for m in received(app)] == [1, 1]
    assert len(caplog.records) == 1


def test_an_unreachable_broker_reports_every_message_unsent_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Celery("unit", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.update(broker_connection_timeout=1, broker_connection_max_retries=0)
    messages = [OutgoingMessage("unit.job", {"n": n}, {}) for n in range(3)]

    with Publisher(app) as publisher, caplog.at_level(logging.ERROR, "celery_pyncette.publish"):
        assert publisher.publish(messages) == [0, 1, 2]
        assert publisher.publish(messages[:1]) == [0]
    app.close()

    assert len(caplog.records) == 2  # once per batch


def test_a_failure_part_way_reports_the_rest_unsent_and_the_next_batch_reconnects(
    app: Celery, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_publish = Producer.publish
    calls = {"n": 0}

    def fails_on_third(self: Producer, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("broker went away")
        return real_publish(self, *args, **kwargs)

    messages = [OutgoingMessage("unit.job", {"n": n}, {}) for n in range(5)]
    monkeypatch.setattr(Producer, "publish", fails_on_third)

    assert publisher.publish(messages) == [2, 3, 4]  # the memory transport sends one at a time
    assert publisher.publish(messages[2:]) == []
    assert [m["body"][1]["n"] for m in received(app)] == [0, 1, 2, 3, 4]


def test_each_queue_is_declared_once_per_batch(
    app: Celery, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared: list[str] = []
    real = Queue.declare

    def counting(self: Queue, *args: Any, **kwargs: Any) -> Any:
        declared.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "declare", counting)
    other = Queue("unit-other", Exchange("unit-other"), "unit-other")
    app.conf.task_queues = [app.amqp.queues[app.conf.task_default_queue], other]
    messages = [
        OutgoingMessage("unit.job", {"n": n}, {}, options={"queue": "unit-other"} if n % 2 else {})
        for n in range(20)
    ]

    assert publisher.publish(messages) == []

    assert sorted(declared) == sorted([app.conf.task_default_queue, "unit-other"])


def test_an_empty_batch_needs_no_broker(publisher: Publisher) -> None:
    assert publisher.publish([]) == []


def test_a_confirm_window_must_hold_a_message(app: Celery) -> None:
    with pytest.raises(ValueError, match="confirm_window"):
        Publisher(app, confirm_window=0)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(), children)
    ),
    max_leaves=12,
)


@given(value=json_values, levels=st.integers(0, 4), length=st.integers(2, 200))
def test_the_fast_repr_is_celerys_saferepr_or_nothing(value: Any, levels: int, length: int) -> None:
    fast = plain_repr(value, length, levels)

    assert fast is None or fast == saferepr(value, length, maxlevels=levels)


def test_the_fast_repr_covers_plain_schedule_arguments() -> None:
    value = {"user_id": 7, "name": "Zoë", "tags": ["x"], "at": None, "ok": True}

    assert plain_repr(value, 1024, 3) == repr(value)
    assert plain_repr((), 1024, 3) == "()"
    assert plain_repr((1,), 1024, 3) == "(1,)"


def test_expires_as_seconds_becomes_the_message_ttl(
    app: Celery, publisher: Publisher, fixed_ids: list[str]
) -> None:
    unsent = publisher.publish([OutgoingMessage("unit.job", {}, {}, options={"expires": 60})])

    assert unsent == []
    (message,) = received(app)
    assert message["properties"]["expiration"] == "60000"
    expires = datetime.fromisoformat(message["headers"]["expires"])
    assert timedelta(seconds=50) < expires - datetime.now(timezone.utc) <= timedelta(seconds=60)
