"""Read-only views of stored instances: ``TaskState`` and pages of them."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette import _misfire as misfire
from celery_pyncette.schedules import StoredSpec, read_spec, schedule_from_spec
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceRecord


@dataclass(frozen=True, slots=True)
class TaskState:
    """The stored state of one instance (``instance`` is ``None`` for a static task).

    ``scheduled_at`` is the next occurrence, as ``context.scheduled_at`` will show it; ``sends_at``
    is when beat sends it: later by the occurrence's offset under ``jitter``, else the same.
    ``start_at`` / ``end_at`` bound the occurrences (``None``: unbounded).
    """

    task: str
    instance: str | None
    args: Mapping[str, Any]
    schedule: str | None
    interval: timedelta | None
    execute_at: datetime | None
    timezone: str | None
    scheduled_at: datetime
    locked_until: datetime | None
    locked_by: str | None
    last_run_at: datetime | None
    last_status: str | None
    partition: int = 0
    #: The instance's own misfire grace (``None``: the task's applies, if it has one).
    misfire_grace: timedelta | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None
    sends_at: datetime | None = None
    #: The instance's ``max_runs`` (``None``: unbounded) and how many runs it has left.
    max_runs: int | None = None
    runs_left: int | None = None

    @classmethod
    def from_record(cls, record: InstanceRecord) -> TaskState:
        """Build the state of a stored record.

        Its schedule fields are the stored spec's (:func:`~celery_pyncette.schedules.read_spec`);
        a spec whose fields do not decode (a record to quarantine) shows none, rather than hiding
        the record.
        """
        try:
            stored = read_spec(record.spec)
        except ValueError:
            stored = StoredSpec(kind=None)
        return cls(
            task=record.key.task,
            instance=None if record.key.instance == STATIC_INSTANCE else record.key.instance,
            args=dict(record.args),
            schedule=stored.expression,
            interval=stored.interval,
            execute_at=stored.execute_at,
            timezone=stored.timezone,
            scheduled_at=_nominal(record, stored),
            locked_until=record.locked_until,
            locked_by=record.locked_by,
            last_run_at=record.last_run_at,
            last_status=record.last_status,
            partition=record.key.partition,
            misfire_grace=misfire.stored_grace(record.spec),
            start_at=stored.start_at,
            end_at=stored.end_at,
            jitter=stored.jitter,
            sends_at=record.next_run,
        )


def _nominal(record: InstanceRecord, stored: StoredSpec) -> datetime:
    """The occurrence a record's next run sends: recovered from the spec under jitter (the
    stored time itself when the spec does not decode)."""
    if stored.jitter is None:
        return record.next_run
    instance = None if record.key.instance == STATIC_INSTANCE else record.key.instance
    try:
        schedule = schedule_from_spec(record.spec).bound_to(record.key.task, instance)
        return schedule.nominal(record.next_run)
    except ValueError:
        return record.next_run


@dataclass(frozen=True, slots=True)
class TaskStatePage:
    """One page of :meth:`Pyncette.list_task_states`; pass ``continuation_token`` for the next."""

    tasks: list[TaskState] = field(default_factory=list)
    continuation_token: str | None = None


def encode_token(partition: int, after: str) -> str:
    """An opaque continuation token: where the next page starts."""
    raw = json.dumps([partition, after]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str) -> tuple[int, str]:
    """The inverse of :func:`encode_token`; ``ValueError`` on a token it did not make."""
    try:
        partition, after = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"continuation_token {token!r} is not valid") from exc
    if not isinstance(partition, int) or not isinstance(after, str):
        raise ValueError(f"continuation_token {token!r} is not valid")
    return partition, after
