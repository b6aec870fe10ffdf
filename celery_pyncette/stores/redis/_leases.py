"""The calls of ``extend.lua``: lease extensions, one script call per task partition.

A heartbeat, the worker's token swap at start, and beat's extension of a whole published batch
all go through the same script: one call per task partition (per chunk of items), so a batch of
one partition is one round trip, and on Redis Cluster each call runs on its partition's node.
Each item costs one key and one or two arguments (the script reads the instance name from the
key), and the reply is one short string: a batch's extension costs the client little more than
the round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.redis._layout import instance_key, text, to_micros

#: One script call: the indexes of its items, its keys and its arguments.
Call = tuple[list[int], list[bytes], list[Any]]


def extend_calls(
    prefix_of: Callable[[str, int], bytes],
    items: Sequence[tuple[InstanceKey, str, str | None]],
    until: datetime,
    chunk: int,
) -> list[Call]:
    """The script calls extending ``items`` (key, lease, new lease or ``None``) to ``until``.

    Items with and without a new lease go in separate calls."""
    expiry = str(to_micros(until))
    groups: dict[tuple[str, int, bool], list[int]] = {}
    for index, (key, _, new_lease) in enumerate(items):
        groups.setdefault((key.task, key.partition, new_lease is not None), []).append(index)
    calls: list[Call] = []
    for (task, partition, swap), indexes in groups.items():
        prefix = prefix_of(task, partition)
        skip = len(instance_key(prefix, ""))
        for start in range(0, len(indexes), chunk):
            members = indexes[start : start + chunk]
            keys = [prefix + b":ready"]
            args: list[Any] = [expiry, skip, "1" if swap else ""]
            for index in members:
                key, lease, new_lease = items[index]
                keys.append(instance_key(prefix, key.instance))
                args.append(lease)
                if new_lease is not None:
                    args.append(new_lease)
            calls.append((members, keys, args))
    return calls


def lost_keys(
    calls: Sequence[Call], replies: Sequence[Any], keys: Sequence[InstanceKey]
) -> list[InstanceKey]:
    """The keys whose flag in the replies of ``calls`` is ``0`` (the lease was lost)."""
    lost = {
        index
        for (indexes, _, _), reply in zip(calls, replies, strict=True)
        for index, flag in zip(indexes, text(reply), strict=True)
        if flag != "1"
    }
    return [key for index, key in enumerate(keys) if index in lost]
