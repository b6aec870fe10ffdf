"""What the publisher is handed and what it sends: the shapes shared by its two paths.

An :class:`OutgoingMessage` is the dispatcher's request. Each path (the factory emulation of
``_factory``, the plain ``app.send_task`` of ``_plain``) turns it into a :class:`Sendable`, which
the publisher writes to a producer without knowing which path made it. A sendable that fails
for a reason of its own (it cannot be routed or serialised) raises :class:`MessageError`; any
other exception is the broker's, and ends the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kombu.messaging import Producer

logger = logging.getLogger("celery_pyncette.publish")

#: Seconds a socket write to the broker may block.
PUBLISH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One task message to send."""

    task: str
    kwargs: Mapping[str, Any]
    headers: Mapping[str, Any]
    args: Sequence[Any] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


class MessageSender(Protocol):
    """What the dispatcher sends batches through: :class:`~._publisher.Publisher`, or a
    simulation's in-process queue (:mod:`celery_pyncette.testing`)."""

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Send ``messages`` in order; return the indexes of those not taken. Never raises."""

    def close(self) -> None:
        """Release the connection (idempotent)."""

    def after_fork(self) -> None:
        """Forget, never close, what the parent process opened."""


class MessageError(Exception):
    """This message alone could not be sent (its route or its serialisation failed)."""


class Sendable(Protocol):
    """One message ready for a producer.

    ``index`` is its place in the batch, ``task_id`` its Celery task id (RabbitMQ's returns name
    it as the correlation id).
    """

    @property
    def index(self) -> int: ...

    @property
    def task_id(self) -> str: ...

    def queue(self) -> Any:
        """The queue to declare once for the batch; ``None``: declared when it is sent."""

    def publish(self, producer: Producer, **extra: Any) -> None:
        """Write the message; ``extra`` are more ``producer.publish`` arguments (``mandatory``).

        Raises :class:`MessageError` for a failure of this message alone.
        """


def log_failed(failed: int, total: int, error: BaseException) -> None:
    """Log, once for a batch, the messages that failed on their own."""
    logger.error(
        "%d of %d message(s) could not be built: %s: %s",
        failed,
        total,
        type(error).__name__,
        error,
    )


def log_broker_failure(exc: Exception, unsent: int, total: int) -> None:
    """Log, once for a batch, a broker failure and what it left unsent."""
    logger.error(
        "publishing failed; %d of %d message(s) not accepted by the broker: %s: %s",
        unsent,
        total,
        type(exc).__name__,
        exc,
    )
