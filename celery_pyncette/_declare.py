"""The decorators of ``Pyncette``: ``task``, ``dynamic_task``, ``partitioned_task``, ``middleware``
and ``fixture``.

Each declared task becomes a Celery task whose class derives from
:class:`~celery_pyncette.worker.PyncetteTaskMixin` (composed with the ``base=`` given, or the app's
``Task``) and is bound to the app's runtime when it is made, so the worker side never looks the
extension up. The definition is recorded in the runtime's catalog.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from celery_pyncette._context import RESERVED_FIXTURE_NAMES
from celery_pyncette._definitions import (
    ExecutionMode,
    TaskDefinition,
    default_partition_selector,
    parse_task_options,
    validate_partitions,
    validate_task_name,
)
from celery_pyncette._runtime import Runtime
from celery_pyncette.worker import PyncetteTaskMixin

F = TypeVar("F", bound=Callable[..., Any])


class DeclarationAPI:
    """The decorators; mixed into :class:`~celery_pyncette.Pyncette`."""

    _runtime: Runtime

    def task(self, **options: Any) -> Callable[[F], Any]:
        """Declare a static scheduled task (``schedule=`` cron or ``interval=``). See API.md."""
        return self._decorator(options, dynamic=False)

    def dynamic_task(self, **options: Any) -> Callable[[F], Any]:
        """Declare a template whose instances are scheduled at run time with schedule_task()."""
        return self._decorator(options, dynamic=True)

    def partitioned_task(
        self,
        partition_count: int = 32,
        partition_selector: Callable[[int, str], int] | None = None,
        enabled_partitions: Iterable[int] | None = None,
        **options: Any,
    ) -> Callable[[F], Any]:
        """A dynamic task whose instances are spread over ``partition_count`` partitions."""
        partitions = validate_partitions(
            partition_count, partition_selector or default_partition_selector, enabled_partitions
        )
        return self._decorator(options, dynamic=True, partitions=partitions)

    def middleware(self, function: F) -> F:
        """Register a middleware ``(context, call_next)``; they run in declaration order."""
        if not callable(function):
            raise ValueError(f"middleware must be callable, got {function!r}")
        self._runtime.catalog.middlewares.append(function)
        return function

    def fixture(self, name: str | None = None) -> Callable[[F], F]:
        """Register a generator (or async generator) fixture, available as ``context.<name>``.

        ``ValueError`` when the name is not an identifier, is taken by the context itself
        (``scheduled_at``, ``args``, ``heartbeat``, ...), or is already registered.
        """

        def register(function: F) -> F:
            if not (inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function)):
                raise ValueError(f"fixture {function!r} must be a generator function (yield once)")
            fixture_name = name or function.__name__
            if not isinstance(fixture_name, str) or not fixture_name.isidentifier():
                raise ValueError(f"fixture name {fixture_name!r} is not an identifier")
            if fixture_name in RESERVED_FIXTURE_NAMES:
                raise ValueError(
                    f"fixture name {fixture_name!r} is taken by the context itself "
                    f"(context.{fixture_name}); give the fixture another name="
                )
            fixtures = self._runtime.catalog.fixtures
            if fixture_name in fixtures:
                raise ValueError(
                    f"fixture {fixture_name!r} is already registered "
                    f"(by {fixtures[fixture_name]!r}); give each fixture its own name="
                )
            fixtures[fixture_name] = function
            return function

        return register

    def _decorator(
        self,
        options: dict[str, Any],
        *,
        dynamic: bool,
        partitions: tuple[int, Callable[[int, str], int], tuple[int, ...] | None] | None = None,
    ) -> Callable[[F], Any]:
        template, celery_options, name = parse_task_options(
            options, dynamic=dynamic, partitions=partitions
        )
        runtime = self._runtime

        def decorate(decorated: F) -> Any:
            function = runtime.catalog.function(decorated) or decorated  # stacked decorators
            if not callable(function):
                raise ValueError(f"@pyncette.task decorates a function, got {function!r}")
            task_name = validate_task_name(
                name or runtime.app.gen_task_name(function.__name__, function.__module__)
            )
            if runtime.catalog.has(task_name):
                raise ValueError(
                    f"task {task_name!r} is already registered; give each schedule its own name="
                )
            definition = dataclasses.replace(
                template,
                name=task_name,
                celery_name=task_name,
                schedule=template.schedule and template.schedule.bound_to(task_name, None),
            )
            celery_task = _celery_task(runtime, function, definition, dict(celery_options))
            runtime.catalog.add(definition, celery_task, function)
            return celery_task

        return decorate


def _celery_task(
    runtime: Runtime,
    function: Callable[..., Any],
    definition: TaskDefinition,
    options: dict[str, Any],
) -> Any:
    base = options.pop("base", None) or runtime.app.Task
    if issubclass(base, PyncetteTaskMixin):
        bases: tuple[type, ...] = (base,)
        class_name = base.__name__
    else:
        bases, class_name = (PyncetteTaskMixin, base), f"Pyncette{base.__name__}"
    bound = type(class_name, bases, {"__module__": __name__, "pyncette_runtime": runtime})
    if definition.execution_mode is ExecutionMode.AT_MOST_ONCE:
        # A redelivered message would run a second time: the broker must not redeliver.
        options["acks_late"] = False
    options.setdefault("shared", False)  # the task belongs to this app and its registry
    return runtime.app.task(name=definition.name, base=bound, typing=False, **options)(function)
