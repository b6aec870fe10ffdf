"""Importing the dynamic instances of a Pyncette 1.x store into this project's store.

Pyncette and celery-pyncette share the model (dynamic tasks with named instances, each with a cron
``schedule`` and ``timezone``, an ``interval`` or a once-off ``execute_at``, and keyword
arguments), so an instance is carried over as it is, next run included, under the task it names:

1. :func:`read_pyncette` reads the store (see :mod:`._pyncette_stores`) and decodes each dynamic
   instance's spec (``name``, ``schedule``, ``interval`` in seconds, ``execute_at`` in ISO 8601,
   ``timezone``, ``extra_args``) into a :class:`PyncetteInstance`, validated the way
   ``schedule_task`` validates; records that cannot be decoded are listed, static tasks' records
   (their schedule is code) are named apart.
2. :func:`plan_pyncette_import` finds the declared dynamic task each instance goes to (the
   Pyncette name, or the one a mapping gives), the partition this project's router picks for it,
   and the next run it gets: the stored one when it is in the future, else now (due at once).
   Anything wrong (an undeclared task, an invalid instance) raises ``ValueError`` before anything
   is written.
3. :func:`write_pyncette_import` writes the plan through the bulk path of ``schedule_tasks``, one
   write per task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette._definitions import (
    TaskDefinition,
    build_schedule,
    validate_args,
    validate_instance_name,
)
from celery_pyncette._extension import Pyncette
from celery_pyncette.importers._entries import Skipped
from celery_pyncette.importers._pyncette_stores import (
    RawRecord,
    describe_source,
    read_records,
)
from celery_pyncette.importers._specs import ConversionError
from celery_pyncette.schedules import Schedule

#: At most this many problems are spelled out in one error message.
_SHOWN_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class PyncetteInstance:
    """One dynamic instance as the Pyncette store holds it (``partition``: Pyncette's, None for a
    task that is not partitioned; ``next_run``: the stored one, aware UTC)."""

    task: str
    partition: int | None
    instance: str
    schedule: Schedule
    args: dict[str, Any]
    next_run: datetime


@dataclass
class PyncetteStore:
    """Everything a Pyncette store held: the instances, the records that cannot be imported
    (``Skipped(name, reason)``), and the static tasks found (not imported: they live in code)."""

    source: str
    instances: list[PyncetteInstance] = field(default_factory=list)
    invalid: list[Skipped] = field(default_factory=list)
    static_tasks: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlannedInstance:
    """One instance as it will be written: ``task`` is the declared task's name, ``partition``
    the one this project's router picks, ``next_run`` the stored one or now when that was past."""

    source: PyncetteInstance
    task: str
    partition: int
    args: dict[str, Any]
    next_run: datetime

    def as_row(self) -> dict[str, Any]:
        return {
            "source": _source_name(self.source),
            "task": self.task,
            "instance": self.source.instance,
            "partition": self.partition,
            "schedule": self.source.schedule.description,
            "next_run": self.next_run,
            "args": self.args,
        }


def read_pyncette(url: str, *, table: str = "pyncette_tasks", namespace: str = "") -> PyncetteStore:
    """Read every dynamic instance of the Pyncette store at ``url``.

    ``table`` is the SQL table (Pyncette's ``sqlite_table_name`` / ``postgres_table_name``),
    ``namespace`` the Redis namespace (``redis_namespace``). Raises ``ConversionError`` when the
    store cannot be read at all; undecodable records are in ``invalid``.
    """
    found = PyncetteStore(describe_source(url))
    static: set[str] = set()
    for record in read_records(url, table=table, namespace=namespace):
        if record.parent is None:
            static.add(_unescape(record.name))
            continue
        try:
            found.instances.append(_decode(record))
        except ConversionError as exc:
            found.invalid.append(Skipped(record.name, str(exc)))
    found.static_tasks = sorted(static)
    return found


def plan_pyncette_import(
    extension: Pyncette, store: PyncetteStore, mapping: Mapping[str, str]
) -> list[PlannedInstance]:
    """Where and how each instance will be written; writes nothing.

    ``mapping`` maps Pyncette task names to declared task names (Celery's, or a function's name
    when unambiguous); an unmapped task keeps its name. Raises ``ValueError`` listing every task
    that is not a declared dynamic task (with the known ones) or every invalid instance.
    """
    if store.invalid:
        _refuse("cannot be imported", [f"{s.name}: {s.reason}" for s in store.invalid])
    definitions, unknown = _targets(extension, store.instances, mapping)
    if unknown:
        known = sorted(d.name for d in extension.definitions() if d.dynamic)
        raise ValueError(
            f"{'; '.join(unknown)}; map a Pyncette task with --task PYNCETTE_NAME=TASK "
            f"(known dynamic tasks: {', '.join(known) or 'none'}); nothing written"
        )
    now = extension.now()
    planned: list[PlannedInstance] = []
    problems: list[str] = []
    for item in store.instances:
        definition = definitions[item.task]
        try:
            name = validate_instance_name(item.instance)
            args = validate_args({**definition.args, **item.args}, "arguments")
        except ValueError as exc:
            problems.append(f"{_source_name(item)}:{item.instance}: {exc}")
            continue
        key = extension.router.key(definition, name)
        planned.append(
            PlannedInstance(item, definition.name, key.partition, args, max(item.next_run, now))
        )
    if problems:
        _refuse("cannot be imported", problems)
    return planned


def write_pyncette_import(
    extension: Pyncette, planned: Sequence[PlannedInstance], *, force: bool = False
) -> list[str]:
    """Write the plan, one bulk write per task; returns ``task/instance`` of those left unchanged
    because they are running here (``force`` false). Store errors propagate."""
    by_task: dict[str, list[PlannedInstance]] = {}
    for item in planned:
        by_task.setdefault(item.task, []).append(item)
    locked: list[str] = []
    for task, items in by_task.items():
        refused = extension._write_instances(
            task,
            [(i.source.instance, i.source.schedule, i.args, i.next_run) for i in items],
            force,
        )
        locked.extend(f"{task}/{name}" for name in refused)
    return locked


# --- decoding -----------------------------------------------------------------------------------


def _decode(record: RawRecord) -> PyncetteInstance:
    task, partition = _split_task(record.parent or "")
    spec = record.spec
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise ConversionError(f"task_spec is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ConversionError(f"task_spec is not a JSON object: {spec!r}")
    instance = spec.get("name")
    if not isinstance(instance, str):
        raise ConversionError(f"task_spec has no instance name: {spec!r}")
    args = spec.get("extra_args") or {}
    if not isinstance(args, dict):
        raise ConversionError(f"extra_args is not an object: {args!r}")
    return PyncetteInstance(
        task=task,
        partition=partition,
        instance=instance,
        schedule=_schedule(spec, record.next_run),
        args=args,
        next_run=_next_run(record.next_run),
    )


def _schedule(spec: Mapping[str, Any], stored_next_run: Any) -> Schedule:
    interval = spec.get("interval")
    execute_at = spec.get("execute_at")
    try:
        if interval is not None:
            if isinstance(interval, bool) or not isinstance(interval, (int, float)):
                raise ValueError(f"interval is not a number of seconds: {interval!r}")
            interval = timedelta(seconds=interval)
        if execute_at is not None:
            execute_at = datetime.fromisoformat(str(execute_at))
            if execute_at.tzinfo is None:
                # Pyncette read a naive execute_at in its host's zone; the stored next run is
                # the instant it computed from it.
                execute_at = _next_run(stored_next_run)
        built = build_schedule(
            spec.get("schedule"), interval, execute_at, spec.get("timezone"), required=True
        )
    except (ValueError, OverflowError) as exc:
        raise ConversionError(str(exc)) from None
    assert built is not None
    return built


def _next_run(value: Any) -> datetime:
    """The stored next run, aware UTC: a POSIX timestamp (SQLite), a datetime (PostgreSQL) or an
    ISO 8601 string (Redis)."""
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, timezone.utc)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
        else:
            raise ValueError(f"unreadable next run {value!r}")
    except (ValueError, OverflowError, OSError) as exc:
        raise ConversionError(f"execute_after: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # stored as UTC
    return moment.astimezone(timezone.utc)


def _split_task(canonical: str) -> tuple[str, int | None]:
    """A task's canonical name -> (its name, its partition or None).

    Separators are single ``:``; ``::`` is an escaped ``:`` in the name, so the first of a pair
    is read as an escape (``a:::3`` is task ``a:``, partition 3).
    """
    parts, current, i = [], [], 0
    while i < len(canonical):
        if canonical[i] == ":":
            if canonical[i + 1 : i + 2] == ":":
                current.append(":")
                i += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(canonical[i])
        i += 1
    parts.append("".join(current))
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 2 and parts[0] and parts[1].isdigit():
        return parts[0], int(parts[1])
    raise ConversionError(f"unrecognised Pyncette task name {canonical!r}")


def _unescape(canonical: str) -> str:
    return canonical.replace("::", ":")


def _source_name(item: PyncetteInstance) -> str:
    return item.task if item.partition is None else f"{item.task}[{item.partition}]"


# --- targets ------------------------------------------------------------------------------------


def _targets(
    extension: Pyncette, instances: Sequence[PyncetteInstance], mapping: Mapping[str, str]
) -> tuple[dict[str, TaskDefinition], list[str]]:
    """Pyncette task name -> declared dynamic task, and the messages for those that have none."""
    counts: dict[str, int] = {}
    for item in instances:
        counts[item.task] = counts.get(item.task, 0) + 1
    found: dict[str, TaskDefinition] = {}
    unknown: list[str] = []
    for task, count in sorted(counts.items()):
        target = mapping.get(task, task)
        described = f"Pyncette task {task!r} ({count} instance{'s' if count > 1 else ''})"
        if target != task:
            described += f" mapped to {target!r}"
        try:
            definition = extension.definition(target)
        except ValueError as exc:
            ambiguous = "ambiguous" in str(exc)  # the lookup's message names the candidates
            unknown.append(f"{described}: {exc if ambiguous else f'no task {target!r} here'}")
            continue
        if not definition.dynamic:
            unknown.append(f"{described}: {definition.name!r} is a static task")
            continue
        found[task] = definition
    return found, unknown


def _refuse(what: str, problems: list[str]) -> None:
    shown = "; ".join(problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    if more > 0:
        shown += f"; and {more} more"
    raise ValueError(f"{len(problems)} Pyncette instance(s) {what}, nothing written: {shown}")
