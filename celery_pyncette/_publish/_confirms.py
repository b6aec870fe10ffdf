"""RabbitMQ publisher confirms: which messages of a window the broker took.

On py-amqp the publisher puts its channel in confirm mode, writes a window of messages, then
reads the broker's acks, nacks and returns until each message of the window is settled. A
nacked message (a full queue with ``x-overflow: reject-publish``) and a returned one (published
``mandatory`` and unroutable) are refused; what is still pending when the wait ends is unsent.
"""

from __future__ import annotations

import time
from typing import Any


class Confirms:
    """Publisher-confirm bookkeeping of one AMQP channel (delivery tags count from 1)."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, int] = {}  # delivery tag -> message index
        self.by_task_id: dict[str, int] = {}  # task id -> message index, for returned messages
        self.refused: set[int] = set()  # message indexes nacked or returned
        self.returned = False

    def expect(self, index: int, task_id: str) -> None:
        """Count the message just published on the channel (its delivery tag is the next)."""
        self.pending[self.next_tag] = index
        self.by_task_id[task_id] = index
        self.next_tag += 1

    def settle(self, delivery_tag: int, multiple: bool, accepted: bool) -> None:
        tags = [t for t in self.pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            index = self.pending.pop(tag, None)
            if index is not None and not accepted:
                self.refused.add(index)

    def on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self.settle(delivery_tag, multiple, accepted=True)

    def on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.settle(delivery_tag, multiple, accepted=False)

    def on_return(self, _exc: Any, _exchange: Any, _routing_key: Any, message: Any) -> None:
        properties = getattr(message, "properties", None) or {}
        index = self.by_task_id.get(properties.get("correlation_id", ""))
        if index is not None:
            self.refused.add(index)
        self.returned = True

    def take_refused(self) -> set[int]:
        """The indexes refused since the last call; forgets the window's task ids."""
        refused, self.refused = self.refused, set()
        self.by_task_id.clear()
        return refused

    def wait(self, connection: Any, timeout: float) -> None:
        """Read acks and nacks until none is pending; ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{len(self.pending)} publisher confirm(s) not received within {timeout}s"
                )
            connection.drain_events(timeout=remaining)


def supports_confirms(connection: Any) -> bool:
    """True for py-amqp, whose channels speak RabbitMQ's publisher confirms."""
    return getattr(connection.transport, "driver_name", None) == "py-amqp"


def confirm_channel(connection: Any) -> tuple[Any, Confirms]:
    """A new channel of ``connection`` in confirm mode, and its bookkeeping."""
    channel = connection.channel()
    confirms = Confirms()
    channel.events["basic_ack"].add(confirms.on_ack)
    channel.events["basic_nack"].add(confirms.on_nack)
    channel.events["basic_return"].add(confirms.on_return)
    channel.confirm_select()
    return channel, confirms
