"""The publisher: one broker connection, a batch at a time, and what the broker did not take.

:class:`Publisher` builds a batch's messages on one of two paths, chosen once at its first
batch: the factory emulation (``_factory``, behind ``_guard``'s version check) or the plain
``app.send_task`` (``_plain``, also the oracle of the publish tests; ``plain=True`` asks for
it). Either way it then sends them the same way:

* one connection (``app.connection_for_write()``) and one producer per batch; the connection is
  opened at the first batch, dropped after any failure and opened again at the next batch;
* on Redis (and any transport with kombu's batch publishing) the batch is one pipeline, on the
  factory path with the pushes to one queue merged into one ``LPUSH`` (``_redis_batch``);
* on RabbitMQ the channel is in publisher-confirm mode (``_confirms``): a window of messages is
  written, then their acknowledgements are awaited together. A message the broker nacks, returns
  as unroutable, or leaves unconfirmed when the connection fails or :data:`CONFIRM_TIMEOUT`
  passes is reported as unsent, so its claim is released and never committed (at-least-once).

A message that fails on its own (it cannot be built, routed or serialised) is unsent and the
others go; a broker failure leaves unsent every message not known to be taken.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu.messaging import Producer

from celery_pyncette import _ids as ids
from celery_pyncette._publish._confirms import Confirms, confirm_channel, supports_confirms
from celery_pyncette._publish._guard import factory_for
from celery_pyncette._publish._message import (
    MessageError,
    OutgoingMessage,
    Sendable,
    log_broker_failure,
    log_failed,
    logger,
)
from celery_pyncette._publish._plain import PlainSend
from celery_pyncette._publish._redis_batch import merge_pushes
from celery_pyncette._publish._routing import declare_queues

if TYPE_CHECKING:
    from celery_pyncette._publish._factory import Factory

#: Messages written before their publisher confirms are awaited (RabbitMQ).
CONFIRM_WINDOW = 100
#: Longest wait for the confirms of one window; the unconfirmed messages are then unsent.
CONFIRM_TIMEOUT = 10.0


class Publisher:
    """Sends batches of task messages over one connection and one producer per batch.

    Not shared between threads in practice (one per beat), but safe if it is: batches are sent
    one at a time. Call :meth:`close` to release the broker connection, and :meth:`after_fork`
    in a forked child before anything else.
    """

    def __init__(
        self,
        app: Celery,
        *,
        confirm_window: int = CONFIRM_WINDOW,
        confirm_timeout: float = CONFIRM_TIMEOUT,
        plain: bool = False,
    ) -> None:
        if confirm_window < 1:
            raise ValueError(f"confirm_window must be at least 1, got {confirm_window!r}")
        self.app = app
        self.confirm_window = confirm_window
        self.confirm_timeout = confirm_timeout
        #: Every message through ``app.send_task``; else decided at the first batch.
        self.plain = plain
        self._factory: Factory | None = None
        self._chosen = plain  # whether the path is decided
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None
        self._confirms: Confirms | None = None

    # --- the public face ----------------------------------------------------------------------

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Send ``messages`` in order; return the indexes of those not accepted by the broker.

        Never raises: a broker failure is logged once per batch and reported as unsent indexes.
        """
        if not messages:
            return []
        with self._lock:
            built, unsent = self._build_all(messages)
            if built:
                unsent.extend(self._send(built, len(messages)))
        return sorted(unsent)

    def close(self) -> None:
        """Close the broker connection (idempotent); the next batch opens a new one."""
        with self._lock:
            self._drop_connection()

    def after_fork(self) -> None:
        """Called in a forked child before any other call: forget, never close, the connection
        inherited from the parent (it is the parent's); the next batch opens one of its own."""
        self._lock = threading.Lock()
        self._connection = self._channel = self._confirms = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- building messages --------------------------------------------------------------------

    def _build_all(self, messages: Sequence[OutgoingMessage]) -> tuple[list[Sendable], list[int]]:
        task_ids = ids.task_ids(len(messages))
        if not self._chosen:
            self._factory, self._chosen = factory_for(self.app), True
        if self._factory is None:
            plain: list[Sendable] = [
                PlainSend(self.app, index, task_id, message)
                for index, (message, task_id) in enumerate(zip(messages, task_ids, strict=True))
            ]
            return plain, []
        built, failed, error = self._factory.build(messages, task_ids)
        if error is not None:
            log_failed(len(failed), len(messages), error)
        return built, failed

    # --- sending ------------------------------------------------------------------------------

    def _send(self, built: list[Sendable], total: int) -> list[int]:
        """Publish built messages; return the indexes not accepted. Never raises."""
        done: set[int] = set()  # sent for sure, should a transport without batches fail part-way
        batching = False
        failed: set[int] = set()
        errors: list[BaseException] = []
        try:
            connection = self._connect()
            if supports_confirms(connection):
                return self._send_confirmed(connection, built, total)
            channel = connection.default_channel
            producer = Producer(channel, auto_declare=False)  # type: ignore[no-untyped-call]
            declare_queues(producer, built)
            batching = bool(getattr(producer, "supports_batch_publish", False))  # kombu >= 5.7
            if batching and self._factory is not None:
                merge_pushes(channel)
            # batching, one pipeline: every message is written at the batch's end, or none is
            size = 16 * len(built) + 1
            with producer.batch(max_size=size) if batching else nullcontext():  # type: ignore[no-untyped-call]
                for item in built:
                    try:
                        item.publish(producer)
                    except MessageError as exc:
                        failed.add(item.index)
                        errors.append(exc)
                    done.add(item.index)
        except Exception as exc:
            self._drop_connection()
            unsent = [
                i.index for i in built if batching or i.index not in done or i.index in failed
            ]
            log_broker_failure(exc, len(unsent), len(built))
            return unsent
        if errors:
            log_failed(len(failed), total, errors[0].__cause__ or errors[0])
        return sorted(failed)

    def _send_confirmed(self, connection: Any, built: list[Sendable], total: int) -> list[int]:
        """Publish in confirm windows; return the indexes nacked, returned or unconfirmed."""
        accepted: set[int] = set()
        refused: set[int] = set()
        failed: set[int] = set()
        errors: list[BaseException] = []
        try:
            channel, confirms = self._confirm_channel(connection)
            producer = Producer(channel, auto_declare=False)  # type: ignore[no-untyped-call]
            declare_queues(producer, built)
            for start in range(0, len(built), self.confirm_window):
                window = built[start : start + self.confirm_window]
                for item in window:
                    try:
                        item.publish(producer, mandatory=True)
                    except MessageError as exc:
                        failed.add(item.index)
                        errors.append(exc)
                        continue
                    confirms.expect(item.index, item.task_id)
                confirms.wait(connection, self.confirm_timeout)
                refused |= confirms.take_refused()
                accepted.update(
                    i.index for i in window if i.index not in refused and i.index not in failed
                )
        except Exception as exc:
            self._drop_connection()
            unsent = [i.index for i in built if i.index not in accepted]
            log_broker_failure(exc, len(unsent), len(built))
            return unsent
        if errors:
            log_failed(len(failed), total, errors[0].__cause__ or errors[0])
        if refused:
            logger.error(
                "the broker refused %d of %d message(s) (nacked or unroutable)",
                len(refused),
                len(built),
            )
        if confirms.returned:
            # an unroutable message may mean that a queue vanished: declare again next batch
            confirms.returned = False
            connection.declared_entities.clear()
        return sorted(refused.union(failed))

    # --- the connection -----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._connection is None:
            # per-message confirms (transport option confirm_publish) would wait once per message
            connection = self.app.connection_for_write(transport_options={"confirm_publish": False})
            try:
                # one quick retry, then the batch is reported unsent: beat retries next tick
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1)
            except Exception:
                connection.release()
                raise
            self._connection = connection
        return self._connection

    def _confirm_channel(self, connection: Any) -> tuple[Any, Confirms]:
        if self._channel is None or self._confirms is None:
            self._channel, self._confirms = confirm_channel(connection)
        return self._channel, self._confirms

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._confirms = None
        if connection is None:
            return
        try:
            connection.release()
        except Exception:
            logger.debug("closing the broker connection failed", exc_info=True)
