"""Publishing on a Redis broker: a batch's messages for one queue go as one ``LPUSH``, in order,
and each message is what ``app.send_task`` writes.

Each test runs its own throw-away Redis server, so the server's command counts are the test's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from kombu import Queue

from celery_pyncette._publish import OutgoingMessage, Publisher
from tests.support.messages import take_waiting
from tests.support.publish_oracle import CASES, Case, assert_fast_equals_plain
from tests.support.servers.local_redis import RedisServer, private_server

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with private_server() as started:
        yield started


def app_on(server: RedisServer, queues: list[Queue]) -> Celery:
    app = Celery("publish-redis", broker=server.url, set_as_current=False)
    app.conf.update(task_queues=queues, task_default_queue=queues[0].name)
    return app


def consumed(app: Celery, queue: str) -> list[int]:
    """The ``n`` argument of every message waiting on ``queue``, in the order a worker gets them."""
    return [message.decode()[1]["n"] for message in take_waiting(app, queue)]


def pushes(server: RedisServer) -> int:
    with redis.Redis(port=server.port) as admin:
        return int(admin.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0))


def test_a_batch_for_one_queue_is_one_push_and_arrives_in_order(server: RedisServer) -> None:
    app = app_on(server, [Queue("jobs")])
    with Publisher(app) as publisher:
        assert publisher.publish([OutgoingMessage("job", {"n": n}, {}) for n in range(250)]) == []
        assert pushes(server) == 1
        assert publisher.publish([OutgoingMessage("job", {"n": n}, {}) for n in range(3)]) == []
        assert pushes(server) == 2

    assert consumed(app, "jobs") == [*range(250), 0, 1, 2]
    app.close()


def test_messages_for_several_queues_keep_their_order_in_each(server: RedisServer) -> None:
    app = app_on(server, [Queue("a"), Queue("b")])
    queues = ["a", "a", "b", "b", "b", "a", "b"]
    messages = [
        OutgoingMessage("job", {"n": n}, {}, options={"queue": queue})
        for n, queue in enumerate(queues)
    ]
    with Publisher(app) as publisher:
        assert publisher.publish(messages) == []

    assert pushes(server) == 4  # one per run of messages for the same queue
    assert consumed(app, "a") == [0, 1, 5]
    assert consumed(app, "b") == [2, 3, 4, 6]
    app.close()


def test_the_expiry_of_an_expiring_queue_is_still_set_between_pushes(server: RedisServer) -> None:
    app = app_on(server, [Queue("expiring", expires=60)])
    with Publisher(app) as publisher:
        assert publisher.publish([OutgoingMessage("job", {"n": n}, {}) for n in range(5)]) == []

    with redis.Redis(port=server.port) as admin:
        assert 0 < admin.pttl("expiring") <= 60_000
        assert admin.info("commandstats")["cmdstat_pexpire"]["calls"] >= 1
    assert consumed(app, "expiring") == list(range(5))
    app.close()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_fast_path_writes_what_send_task_writes(
    server: RedisServer, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Celery("publish-redis", broker=server.url, set_as_current=False)
    app.conf.task_default_queue = "oracle-default"

    assert_fast_equals_plain(app, case, "oracle", monkeypatch)
    app.close()
