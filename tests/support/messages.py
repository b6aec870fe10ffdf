"""Reading back what was published: the messages waiting on a queue, as a worker would get them."""

from __future__ import annotations

from typing import Any

from celery import Celery


def take_waiting(app: Celery, queue: str | None = None) -> list[Any]:
    """Every message waiting on ``queue`` (default: the app's default queue), in the order a
    worker gets them; each is acknowledged, so the queue is left empty."""
    taken: list[Any] = []
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(app.amqp.queues[queue or app.conf.task_default_queue])
        while True:
            try:
                message = simple.get(block=False)
            except simple.Empty:
                break
            message.ack()
            taken.append(message)
        simple.close()
    return taken
