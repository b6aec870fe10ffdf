"""The rules for task and instance names, the same for every store and every way in.

Names reach the store from the decorators, ``beat_schedule``, ``schedule_task``/``schedule_tasks``/
``scatter``, ``unschedule_task``, ``get_task_state``, the CLI and the dashboard; all of them go
through :func:`check_task_name` or :func:`check_instance_name`, so a name is refused with a
``ValueError`` naming the rule before anything is written, never by a store later (PostgreSQL
rejects NUL characters, every store rejects text that is not valid UTF-8).

A name is a non-empty ``str`` that

* encodes to UTF-8 (no lone surrogates such as ``"\\udc80"``) and holds no NUL character;
* fits every store: a task name at most :data:`MAX_TASK_NAME` characters (at most 800 UTF-8
  bytes, the SQL column), an instance name at most :data:`MAX_INSTANCE_BYTES` UTF-8 bytes
  (DynamoDB's sort-key limit);
* is not one of the library's own: task names starting with :data:`RESERVED_TASK_PREFIX` hold
  the beat registry, the partition counts and the concurrency slots
  (:mod:`celery_pyncette._records`; :func:`is_reserved_task_name` tells them); the instance name
  :data:`~celery_pyncette.stores.base.STATIC_INSTANCE` is the record of a static task, and
  instance names starting with :data:`RESERVED_INSTANCE_PREFIX` are the library's extra
  occurrences (run now, backfill) beside a task's instances.
"""

from __future__ import annotations

from typing import Any

from celery_pyncette._records import (
    RESERVED_INSTANCE_PREFIX,
    RESERVED_TASK_PREFIX,
    is_reserved_instance,
)
from celery_pyncette._records import is_library_task as is_reserved_task_name
from celery_pyncette.stores.base import STATIC_INSTANCE

__all__ = [
    "MAX_INSTANCE_BYTES",
    "MAX_TASK_NAME",
    "RESERVED_INSTANCE_PREFIX",
    "RESERVED_TASK_PREFIX",
    "check_instance_name",
    "check_task_name",
    "is_reserved_task_name",
]

#: Longest task name, in characters (Celery task names are dotted paths).
MAX_TASK_NAME = 200
#: Longest instance name, in UTF-8 bytes (DynamoDB's sort-key limit, kept for every store).
MAX_INSTANCE_BYTES = 1024


def _check_text(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"{what} {name[:80]!r} contains a NUL character, which no store keeps")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{what} {name[:80]!r} is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    return name


def check_task_name(value: Any) -> str:
    """Return ``value`` if it may name a task; raise ``ValueError`` naming the rule it breaks."""
    name = _check_text(value, "task name")
    if len(name) > MAX_TASK_NAME:
        raise ValueError(
            f"task name {name[:80]!r}... is {len(name)} characters; the limit is {MAX_TASK_NAME}"
        )
    if is_reserved_task_name(name):
        raise ValueError(
            f"task name {name!r} is reserved: names starting with {RESERVED_TASK_PREFIX!r} hold "
            "celery-pyncette's own records (beat registry, partition counts, concurrency slots)"
        )
    return name


def check_instance_name(value: Any) -> str:
    """Return ``value`` if it may name a dynamic instance; raise ``ValueError`` otherwise."""
    instance = _check_text(value, "instance name")
    size = len(instance.encode("utf-8"))
    if size > MAX_INSTANCE_BYTES:
        raise ValueError(
            f"instance name {instance[:40]!r}... is {size} bytes as UTF-8; the limit is "
            f"{MAX_INSTANCE_BYTES}"
        )
    if instance == STATIC_INSTANCE:
        raise ValueError(
            f"instance name {STATIC_INSTANCE!r} is reserved: it is the record of a static task"
        )
    if is_reserved_instance(instance):
        raise ValueError(
            f"instance name {instance[:80]!r} is reserved: names starting with "
            f"{RESERVED_INSTANCE_PREFIX!r} hold celery-pyncette's extra occurrences (run now, "
            "backfill)"
        )
    return instance
