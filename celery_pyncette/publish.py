"""Publishing occurrences as ordinary Celery task messages.

The dispatcher hands over a batch; the publisher reports which messages the broker did not take,
so their claims can be released. Messages are Celery protocol messages built by Celery itself, so
any worker consumes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

logger = logging.getLogger("celery_pyncette.publish")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One task message to send."""

    task: str
    kwargs: Mapping[str, Any]
    headers: Mapping[str, Any]
    args: Sequence[Any] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


class Publisher:
    """Sends batches of task messages over one producer per batch."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Send ``messages`` in order; return the indexes of those not accepted by the broker.

        Never raises: a broker failure is logged once per batch and reported as unsent indexes.
        """
        sent = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for message in messages:
                    self.app.send_task(
                        message.task,
                        args=list(message.args),
                        kwargs=dict(message.kwargs),
                        headers=dict(message.headers),
                        producer=producer,
                        **message.options,
                    )
                    sent += 1
        except Exception:
            logger.exception("publishing failed after %d of %d message(s)", sent, len(messages))
        return list(range(sent, len(messages)))
