"""The calls of ``redis_extend.lua``: lease extensions, one script call per task partition.

A heartbeat, the worker's token swap at start, and beat's extension of a whole published batch
all go through the same script: one call per task partition (per chunk of items), so a batch of
one partition is one round trip, and on Redis Cluster each call runs on its partition's node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.redis._layout import instance_key, to_micros

#: One script call: the indexes of its items, its keys and its arguments.
Call = tuple[list[int], list[bytes], list[Any]]


def extend_calls(
    prefix_of: Callable[[str, int], bytes],
    items: Sequence[tuple[InstanceKey, str, str]],
    until: datetime,
    chunk: int,
) -> list[Call]:
    """The script calls extending ``items`` (key, lease, new lease or ``""``) to ``until``."""
    expiry = str(to_micros(until))
    groups: dict[tuple[str, int], list[int]] = {}
    for index, (key, _, _) in enumerate(items):
        groups.setdefault((key.task, key.partition), []).append(index)
    calls: list[Call] = []
    for part, indexes in groups.items():
        prefix = prefix_of(*part)
        for start in range(0, len(indexes), chunk):
            members = indexes[start : start + chunk]
            keys = [prefix + b":ready"]
            args: list[Any] = [expiry]
            for index in members:
                key, lease, new_lease = items[index]
                keys.append(instance_key(prefix, key.instance))
                args += [key.instance.encode("utf-8"), lease, new_lease]
            calls.append((members, keys, args))
    return calls
