"""celery-pyncette: Celery beat with Pyncette's model.

Schedules live in a store (SQLite, PostgreSQL, MySQL/MariaDB, Redis, DynamoDB); each due occurrence
is claimed under a lease, so several beats run at once without duplicates; occurrences are sent as
ordinary Celery messages and settled by the worker per execution and failure mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery_pyncette._context import Context, current_context
from celery_pyncette._definitions import ExecutionMode, FailureMode, TaskDefinition
from celery_pyncette._extension import Pyncette
from celery_pyncette._heartbeat import with_heartbeat
from celery_pyncette._state import TaskState, TaskStatePage
from celery_pyncette.errors import (
    BulkWriteError,
    ConfigurationError,
    LeaseLostError,
    PyncetteError,
    StoreError,
    TaskLockedError,
)
from celery_pyncette.stores.base import Run, Strike
from celery_pyncette.worker import connect_receivers

if TYPE_CHECKING:
    from celery_pyncette.beat import Scheduler

__version__ = "0.1.0"

# The worker side (settling plain beat_schedule tasks, opening the store, fixtures) runs on signals.
connect_receivers()

__all__ = [
    "BulkWriteError",
    "ConfigurationError",
    "Context",
    "ExecutionMode",
    "FailureMode",
    "LeaseLostError",
    "Pyncette",
    "PyncetteError",
    "Run",
    "Scheduler",
    "StoreError",
    "Strike",
    "TaskDefinition",
    "TaskLockedError",
    "TaskState",
    "TaskStatePage",
    "current_context",
    "with_heartbeat",
]


def __getattr__(name: str) -> Any:
    # The scheduler imports celery.beat; load it only when beat asks for it.
    if name == "Scheduler":
        from celery_pyncette.beat import Scheduler

        return Scheduler
    raise AttributeError(f"module 'celery_pyncette' has no attribute {name!r}")
