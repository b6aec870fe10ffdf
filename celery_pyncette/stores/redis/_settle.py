"""The script calls of the writes that settle a lease: commits and unlocks, with their history
entries (see ``commit.lua`` and ``unlock.lua`` for the argument layout)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from celery_pyncette.stores._history import FINISHED, Run, run_to_json
from celery_pyncette.stores.base import Commit, InstanceKey
from celery_pyncette.stores.redis._layout import by_partition, instance_key, to_micros

#: One script call: the item positions it covers, its keys, its arguments.
Call = tuple[list[int], list[bytes], list[Any]]


def _entry(run: Run | None) -> bytes:
    return b"" if run is None else run_to_json(run).encode("utf-8")


def commit_calls(
    prefix_of: Callable[[str, int], bytes], commits: Sequence[Commit], now: datetime
) -> list[Call]:
    """One ``commit.lua`` call per task partition."""
    now_us = str(to_micros(now))
    calls: list[Call] = []
    for part, items in by_partition(commits, lambda c: c.key):
        prefix = prefix_of(*part)
        keys = [prefix + b":ready", prefix + b":names"]
        args: list[Any] = [now_us, str(to_micros(FINISHED))]
        for _, item in items:
            keys.append(instance_key(prefix, item.key.instance))
            next_run = "" if item.next_run is None else str(to_micros(item.next_run))
            args += [item.key.instance.encode("utf-8"), item.lease, next_run, item.status]
            args += [_entry(item.run), str(item.history_size), str(item.max_runs or "")]
        calls.append(([i for i, _ in items], keys, args))
    return calls


def unlock_calls(
    prefix_of: Callable[[str, int], bytes],
    items: Sequence[tuple[InstanceKey, str, Run | None, int]],
) -> list[Call]:
    """One ``unlock.lua`` call per task partition: (key, lease, history entry, history size)."""
    calls: list[Call] = []
    for part, group in by_partition(items, lambda item: item[0]):
        prefix = prefix_of(*part)
        keys = [prefix + b":ready"]
        args: list[Any] = []
        for _, (key, lease, run, size) in group:
            keys.append(instance_key(prefix, key.instance))
            args += [key.instance.encode("utf-8"), lease, _entry(run), str(size)]
        calls.append(([i for i, _ in group], keys, args))
    return calls
