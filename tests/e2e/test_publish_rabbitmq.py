"""Publisher confirms on RabbitMQ: what the broker refuses is reported unsent, never lost.

A queue with ``x-max-length`` and ``x-overflow: reject-publish`` makes RabbitMQ nack what does
not fit; a message routed to an exchange with no queue bound comes back as unroutable. Each
message, written in confirm mode, is what ``app.send_task`` writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from celery import Celery
from kombu import Connection, Exchange, Queue

from celery_pyncette._publish import OutgoingMessage, Publisher
from tests.e2e.harness import BROKERS
from tests.support.publish_oracle import CASES, Case, assert_fast_equals_plain
from tests.support.servers import require_server

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]

URL, HOST, PORT = BROKERS["rabbitmq"]


@pytest.fixture
def names() -> Iterator[str]:
    require_server("rabbitmq", HOST, PORT)
    name = f"publish-{uuid.uuid4().hex[:10]}"
    yield name
    with Connection(URL, connect_timeout=3) as connection:
        channel = connection.channel()
        for queue in (name, f"{name}-free"):
            channel.queue_delete(queue)
        channel.exchange_delete(f"{name}-unbound")
        channel.close()


def app_with(queues: list[Queue]) -> Celery:
    app = Celery("publish-confirms", broker=URL, set_as_current=False)
    app.conf.update(task_queues=queues, task_default_queue=queues[0].name)
    return app


def count(queue: str) -> int:
    with Connection(URL, connect_timeout=3) as connection:
        channel = connection.channel()
        ready = channel.queue_declare(queue, passive=True).message_count
        channel.close()
    return int(ready)


def messages(n: int, **options: str) -> list[OutgoingMessage]:
    return [OutgoingMessage("e2e.plain", {"label": str(i)}, {}, options=options) for i in range(n)]


@pytest.mark.parametrize("plain", [False, True], ids=["fast", "plain"])
def test_messages_the_broker_nacks_are_reported_unsent(names: str, plain: bool) -> None:
    full = Queue(
        names,
        Exchange(names),
        names,
        queue_arguments={"x-max-length": 3, "x-overflow": "reject-publish"},
    )
    app = app_with([full])

    with Publisher(app, confirm_window=4, plain=plain) as publisher:
        unsent = publisher.publish(messages(10))
        again = publisher.publish(messages(2))
    app.close()

    assert unsent == [3, 4, 5, 6, 7, 8, 9]
    assert again == [0, 1]
    assert count(names) == 3


@pytest.mark.parametrize("plain", [False, True], ids=["fast", "plain"])
def test_an_unroutable_message_is_reported_unsent_and_the_rest_of_the_batch_goes(
    names: str, plain: bool
) -> None:
    free = Queue(f"{names}-free", Exchange(f"{names}-free"), f"{names}-free")
    app = app_with([free])
    with Connection(URL) as connection:
        Exchange(f"{names}-unbound", type="direct")(connection.default_channel).declare()
    batch = messages(3)
    batch[1] = OutgoingMessage(
        "e2e.plain", {}, {}, options={"exchange": f"{names}-unbound", "routing_key": "nowhere"}
    )

    with Publisher(app, plain=plain) as publisher:
        unsent = publisher.publish(batch)
    app.close()

    assert unsent == [1]
    assert count(f"{names}-free") == 2


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_fast_path_writes_what_send_task_writes(
    names: str, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Celery("publish-confirms", broker=URL, set_as_current=False)
    app.conf.task_default_queue = f"{names}-default"
    try:
        assert_fast_equals_plain(app, case, names, monkeypatch)
    finally:
        drop_entities(app, names)
        app.close()


def drop_entities(app: Celery, prefix: str) -> None:
    """Delete the queues and exchanges of ``app`` named with ``prefix``."""
    with Connection(URL, connect_timeout=3) as connection:
        channel = connection.channel()
        for queue in list(app.amqp.queues.values()):
            if queue.name.startswith(prefix):
                channel.queue_delete(queue.name)
            if queue.exchange.name.startswith(prefix):
                channel.exchange_delete(queue.exchange.name)
        channel.close()
