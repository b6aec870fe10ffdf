"""Messages from the publisher are ordinary Celery messages: a real ``celery worker`` runs them.

The worker is the end-to-end project's (``tests/e2e/proj.py``) on a queue of its own; the
messages are built and sent by :class:`Publisher` from a separate app, as beat sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from celery_pyncette._publish import OutgoingMessage, Publisher
from tests.e2e.harness import BROKERS, Deployment, deployment
from tests.support.servers import require_server

pytestmark = [pytest.mark.e2e, pytest.mark.server, pytest.mark.timeout(90)]


@pytest.fixture(params=["redis", "rabbitmq"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    url, host, port = BROKERS[request.param]
    require_server(request.param, host, port)
    with deployment(tmp_path, url, "memory://", []) as d:
        yield d


def test_a_worker_runs_every_message_the_publisher_sends(deployed: Deployment) -> None:
    deployed.start_worker()
    deployed.must_live = {"worker"}
    client = Celery("publisher-e2e", broker=deployed.broker, set_as_current=False)
    client.conf.task_default_queue = deployed.queue
    labels = [f"message-{n}" for n in range(150)]  # two confirm windows on RabbitMQ
    messages = [
        OutgoingMessage("e2e.plain", {"label": label}, {"pyncette-test": label}) for label in labels
    ]

    with Publisher(client) as publisher:
        unsent = publisher.publish(messages)
    client.close()

    assert unsent == []
    events = deployed.wait_for(
        lambda found: len(found) >= len(labels), 60, f"{len(labels)} executions"
    )
    assert sorted(e["label"] for e in events) == sorted(labels)
