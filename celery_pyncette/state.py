"""Read-only views of stored instances: ``TaskState`` and pages of them."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceRecord


@dataclass(frozen=True, slots=True)
class TaskState:
    """The stored state of one instance (``instance`` is ``None`` for a static task)."""

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

    @classmethod
    def from_record(cls, record: InstanceRecord) -> TaskState:
        """Build the state of a stored record."""
        spec = record.spec
        kind = spec.get("kind")
        seconds = spec.get("seconds")
        at = spec.get("at")
        return cls(
            task=record.key.task,
            instance=None if record.key.instance == STATIC_INSTANCE else record.key.instance,
            args=dict(record.args),
            schedule=spec.get("expression") if kind == "cron" else None,
            interval=timedelta(seconds=float(seconds)) if kind == "interval" and seconds else None,
            execute_at=datetime.fromisoformat(at) if kind == "once" and at else None,
            timezone=spec.get("timezone") if kind == "cron" else None,
            scheduled_at=record.next_run,
            locked_until=record.locked_until,
            locked_by=record.locked_by,
            last_run_at=record.last_run_at,
            last_status=record.last_status,
            partition=record.key.partition,
        )


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
