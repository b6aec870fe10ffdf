"""``max_runs`` and the run history entry that each settled run writes with its commit.

``max_runs`` is a task option (``task``, ``dynamic_task``, ``partitioned_task``) and an instance
option (``schedule_task``, ``schedule_tasks``); a dynamic instance keeps its own in its stored
spec, under :data:`SPEC_KEY` (schedules ignore keys they do not use), so a worker settling it
needs nothing but the message. The store counts settled runs and ends the instance at the limit
(see :meth:`~celery_pyncette.stores.base.Store.commit`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from celery_pyncette.stores._history import Run, Status, error_text
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord, RunLog

#: The key of a dynamic instance's ``max_runs`` in its stored spec.
SPEC_KEY = "max_runs"


def parse_max_runs(value: Any) -> int | None:
    """``None`` or a positive int; ``ValueError`` naming ``max_runs`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_runs must be a positive int, got {value!r}")
    return value


def with_max_runs(record: InstanceRecord, max_runs: int | None) -> InstanceRecord:
    """``record`` with ``max_runs`` kept in its spec (unchanged when it is ``None``)."""
    if max_runs is None:
        return record
    return record.with_changes(spec={**record.spec, SPEC_KEY: max_runs})


def max_runs_of(
    key: InstanceKey, spec: Mapping[str, Any] | None, default: int | None
) -> int | None:
    """The ``max_runs`` that applies to a commit of ``key``: a static task's is its
    definition's (``default``), a dynamic instance's is the one in its spec."""
    if key.instance == STATIC_INSTANCE or spec is None:
        return default
    value = spec.get(SPEC_KEY)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def runs_left(max_runs: int | None, log: RunLog) -> int | None:
    """How many runs an instance has left, ``None`` without ``max_runs``."""
    return None if max_runs is None else max(max_runs - log.count, 0)


@cache
def hostname() -> str:
    """This machine's name, as history entries name the worker (or beat) that settled a run."""
    return socket.gethostname()


def entry(
    scheduled_at: datetime,
    started_at: datetime | None,
    finished_at: datetime,
    status: Status,
    error: BaseException | None = None,
    worker: str | None = None,
) -> Run:
    """The history entry of one settled run."""
    return Run(
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=finished_at,
        status=status,
        worker=worker or hostname(),
        error=None if error is None else error_text(error),
    )


def commit_extras(
    record: InstanceRecord, status: Status, now: datetime, default: int | None, history_size: int
) -> tuple[Run, int, int | None]:
    """The history entry, history size and ``max_runs`` of a commit beat makes for a claimed
    ``record`` (struck or, at-most-once, sent): such a run did not start here."""
    run = entry(record.next_run, None, now, status)
    return run, history_size, max_runs_of(record.key, record.spec, default)
