"""The catalog of one app: task definitions, the functions behind them, middlewares, fixtures.

Filled by the decorators (:mod:`celery_pyncette._declare`) at import time and read by beat and the
worker through the runtime. ``app.conf.beat_schedule`` entries join the declared tasks as static
at-least-once definitions, named by their entry names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery

from celery_pyncette import _misfire as misfire
from celery_pyncette._definitions import TaskDefinition, validate_task_name
from celery_pyncette._lookup import find_definition
from celery_pyncette._names import check_task_name, is_reserved_task_name
from celery_pyncette.errors import ConfigurationError
from celery_pyncette.schedules import from_celery


class Catalog:
    """What one app declared; lookups raise ``ValueError`` naming the known tasks."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._definitions: dict[str, TaskDefinition] = {}
        self._functions: dict[int, Callable[..., Any]] = {}
        self._modules: dict[str, str] = {}
        self.middlewares: list[Callable[..., Any]] = []
        self.fixtures: dict[str, Callable[..., Any]] = {}

    def add(
        self, definition: TaskDefinition, celery_task: Any, function: Callable[..., Any]
    ) -> None:
        """Record a declared task; ``ValueError`` when its name is taken."""
        if definition.name in self._definitions:
            raise ValueError(
                f"task {definition.name!r} is already registered; give each schedule its own name="
            )
        self._definitions[definition.name] = definition
        self._functions[id(celery_task)] = function
        module = getattr(function, "__module__", None)
        if isinstance(module, str):
            self._modules[definition.name] = module

    def has(self, name: str) -> bool:
        """True when a task of this name was declared with the decorators."""
        return name in self._definitions

    def function(self, celery_task: Any) -> Callable[..., Any] | None:
        """The user function behind a task declared here (or the object itself when it is one)."""
        return self._functions.get(id(celery_task))

    def module_of(self, name: str) -> str | None:
        """The module of the function behind the declared task ``name`` (``None`` when unknown,
        as for a ``beat_schedule`` entry)."""
        return self._modules.get(name)

    def definition(self, task: Any) -> TaskDefinition:
        """The definition of a task given as the decorated task object or its name.

        A name is the full name or, when unambiguous, the function's own name (see
        :mod:`celery_pyncette._lookup`); ``ValueError`` lists the candidates otherwise.
        """
        name = task if isinstance(task, str) else getattr(task, "name", None)
        if isinstance(name, str) and is_reserved_task_name(name):
            check_task_name(name)  # raises, naming the rule
        found = self._definitions.get(name) if isinstance(name, str) else None
        if found is not None:
            return found
        if not isinstance(name, str):
            raise ValueError(f"{task!r} is not a task declared with this Pyncette instance")
        return find_definition(name, {**self.beat_schedule_definitions(), **self._definitions})

    def definitions(
        self, enabled_partitions: Mapping[str, tuple[int, ...]] | None = None
    ) -> list[TaskDefinition]:
        """Every definition: declared tasks and ``beat_schedule`` entries.

        ``enabled_partitions`` (``pyncette_enabled_partitions``) narrows the partitions this
        process polls; it must name partitioned tasks and partitions they have
        (``ConfigurationError`` otherwise).
        """
        merged = dict(self.beat_schedule_definitions())
        merged.update(self._definitions)
        for task, partitions in (enabled_partitions or {}).items():
            definition = merged.get(task)
            if definition is None or not definition.dynamic:
                raise ConfigurationError(
                    f"pyncette_enabled_partitions: {task!r} is not a dynamic task of this app"
                )
            outside = [p for p in partitions if p >= definition.partition_count]
            if outside:
                raise ConfigurationError(
                    f"pyncette_enabled_partitions: {task!r} has partitions "
                    f"0..{definition.partition_count - 1}, not {outside}"
                )
            merged[task] = dataclasses.replace(definition, enabled_partitions=partitions)
        return list(merged.values())

    def beat_schedule_definitions(self) -> dict[str, TaskDefinition]:
        """``app.conf.beat_schedule`` entries as static at-least-once definitions, by entry name."""
        definitions: dict[str, TaskDefinition] = {}
        for entry_name, entry in (self.app.conf.beat_schedule or {}).items():
            if not isinstance(entry, Mapping) or "task" not in entry or "schedule" not in entry:
                raise ConfigurationError(
                    f"beat_schedule[{entry_name!r}] needs 'task' and 'schedule'"
                )
            try:
                schedule = from_celery(entry["schedule"], self.app)
                misfire.check_expires((entry.get("options") or {}).get("expires"))
            except ValueError as exc:
                raise ConfigurationError(f"beat_schedule[{entry_name!r}]: {exc}") from exc
            definitions[entry_name] = TaskDefinition(
                name=validate_task_name(entry_name),
                celery_name=entry["task"],
                schedule=schedule,
                args=dict(entry.get("kwargs") or {}),
                positional=tuple(entry.get("args") or ()),
                options=dict(entry.get("options") or {}),
            )
        return definitions
