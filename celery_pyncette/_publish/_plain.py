"""The plain path: each message sent with ``app.send_task``, Celery's public API only.

It is the fallback of the factory emulation (a Celery or kombu it was not verified on) and the
oracle of the publish tests: whatever the factory path writes must equal what this path writes
for the same message and task id. It shares the publisher's connection, producer, batch and
confirm windows; ``send_task`` routes, builds and declares every message itself, and tells the
result backend about each task, as it always does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.exceptions import EncodeError
from kombu.messaging import Producer

from celery_pyncette._publish._message import PUBLISH_TIMEOUT, MessageError, OutgoingMessage

#: Publish flags that are the publisher's to set (``mandatory``), or obsolete (``immediate``).
_PUBLISHER_FLAGS = ("mandatory", "immediate")
#: What ``send_task`` raises for a message of its own before writing it: no such queue
#: (``QueueNotFound`` is a ``KeyError``), options it cannot take, arguments it cannot serialise.
#: Anything else is taken for the broker's failure.
_MESSAGE_ERRORS = (KeyError, TypeError, ValueError, EncodeError)


@dataclass(slots=True)
class PlainSend:
    """A message to send with ``app.send_task``."""

    app: Celery
    index: int
    task_id: str
    message: OutgoingMessage

    def queue(self) -> None:
        """``send_task`` declares the routed queue itself."""
        return

    def publish(self, producer: Producer, **extra: Any) -> None:
        """``app.send_task`` on ``producer``, without retries; a failure before anything was
        written (the route, the serialisation) is :class:`MessageError`."""
        message = self.message
        options = {k: v for k, v in message.options.items() if k not in _PUBLISHER_FLAGS}
        options.update(extra)
        try:
            self.app.send_task(
                message.task,
                args=tuple(message.args),
                kwargs=dict(message.kwargs),
                headers=dict(message.headers),
                task_id=self.task_id,
                producer=producer,
                retry=False,
                timeout=PUBLISH_TIMEOUT,
                **options,
            )
        except _MESSAGE_ERRORS as exc:
            raise MessageError(str(exc)) from exc
