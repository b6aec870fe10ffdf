"""Redis: the pushes of a kombu publish batch merged, one ``LPUSH`` per queue and batch.

kombu (5.7 and later) publishes a batch on Redis as one pipeline. :func:`merge_pushes` makes a
channel's batches merge consecutive pushes to one list, which leaves every list exactly as it
would have been; any other channel, and a batch without a Redis pipeline, is left alone. This
reaches into kombu's Redis channel (``create_publish_batch``, the batch's ``pipeline``), so only
the factory path, behind its version guard, uses it.
"""

from __future__ import annotations

from typing import Any


class MergedPushes:
    """Stands in for the pipeline of kombu's Redis publish batch, turning consecutive ``LPUSH``
    commands to one list into one ``LPUSH`` of all their values.

    ``LPUSH key a`` then ``LPUSH key b`` and ``LPUSH key a b`` leave the same list (the values go
    in one after another), so the messages arrive exactly as before; Redis then parses, and the
    client packs and reads, one command per queue and batch instead of one per message. Any other
    command (``PEXPIRE`` of an expiring queue, ``PUBLISH`` of a fanout) is queued after the pushes
    before it, in order.
    """

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self._key: Any = None
        self._values: list[Any] = []

    def lpush(self, key: Any, *values: Any) -> None:
        if key != self._key:
            self._queue_pushes()
            self._key = key
        self._values.extend(values)

    def execute(self) -> Any:
        self._queue_pushes()
        return self._pipeline.execute()

    def reset(self) -> None:
        self._key, self._values = None, []
        self._pipeline.reset()

    def _queue_pushes(self) -> None:
        if self._values:
            self._pipeline.lpush(self._key, *self._values)
        self._key, self._values = None, []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._pipeline, name)
        if not callable(attribute):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            self._queue_pushes()
            return attribute(*args, **kwargs)

        return command


def merge_pushes(channel: Any) -> None:
    """Make the publish batches of a kombu Redis ``channel`` merge their pushes (see
    :class:`MergedPushes`); other channels, and a batch without a Redis pipeline, are left as
    they are."""
    create_batch = getattr(channel, "create_publish_batch", None)
    if create_batch is None or getattr(create_batch, "merges_pushes", False):
        return

    def create_publish_batch(max_size: int) -> Any:
        batch = create_batch(max_size)
        pipeline = getattr(batch, "pipeline", None)
        if callable(getattr(pipeline, "lpush", None)):
            batch.pipeline = MergedPushes(pipeline)
        return batch

    create_publish_batch.merges_pushes = True  # type: ignore[attr-defined]
    channel.create_publish_batch = create_publish_batch
