"""``Pyncette(app)``: the registry of task definitions and the run-time API of one Celery app.

It owns the decorators (``task``, ``dynamic_task``, ``partitioned_task``, ``middleware``,
``fixture``), the dynamic-task API (``schedule_task`` and friends, with async twins), strikes, and
the per-process store connection. Beat and the worker find it with :func:`extension_for`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Celery

from celery_pyncette.bounds import check_duration
from celery_pyncette.clock import StoreClock
from celery_pyncette.config import Settings, settings_from
from celery_pyncette.definitions import (
    ExecutionMode,
    TaskDefinition,
    build_schedule,
    default_partition_selector,
    parse_task_options,
    validate_args,
    validate_instance_name,
    validate_partitions,
    validate_task_name,
)
from celery_pyncette.errors import BulkWriteError, ConfigurationError, StoreError
from celery_pyncette.lookup import find_definition
from celery_pyncette.names import check_task_name, is_reserved_task_name
from celery_pyncette.routing import PartitionRouter
from celery_pyncette.schedules import OnceSchedule, Schedule, from_celery
from celery_pyncette.state import TaskState, TaskStatePage, decode_token, encode_token
from celery_pyncette.stores import store_class, store_from_url
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord, Store, Strike
from celery_pyncette.strikes import StrikeView

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSIONS: weakref.WeakKeyDictionary[Celery, Pyncette] = weakref.WeakKeyDictionary()
_EXTENSIONS_LOCK = threading.Lock()

logger = logging.getLogger("celery_pyncette")

#: Instances per bulk write of schedule_tasks() / scatter().
BULK_CHUNK = 500

#: Operators a strike may use.
STRIKE_OPERATORS = ("==", "!=", "<", "<=", ">", ">=")


def existing_extension(app: Celery) -> Pyncette | None:
    """The :class:`Pyncette` of ``app`` if one was created, else ``None`` (never creates one)."""
    with _EXTENSIONS_LOCK:
        return _EXTENSIONS.get(app)


def extension_for(app: Celery) -> Pyncette:
    """The :class:`Pyncette` of ``app``, created with the app's settings if there is none yet."""
    with _EXTENSIONS_LOCK:
        existing = _EXTENSIONS.get(app)
    return existing if existing is not None else Pyncette(app)


class Pyncette:
    """The celery-pyncette extension of one Celery app.

    ``Pyncette(app, url=..., batch_size=...)``: keywords override the ``pyncette_*`` settings of
    ``app.conf``; an unknown or malformed one raises :class:`ConfigurationError`.
    """

    def __init__(self, app: Celery, **settings: Any) -> None:
        self.app = app
        self._overrides = dict(settings)
        self._settings: Settings | None = None
        if settings:
            self._settings = settings_from(app.conf, settings)
        self._definitions: dict[str, TaskDefinition] = {}
        self._functions: dict[int, Callable[..., Any]] = {}
        self.middlewares: list[Callable[..., Any]] = []
        self.fixtures: dict[str, Callable[..., Any]] = {}
        self._store: Store | None = None
        self._store_pid = 0
        self._store_lock = threading.Lock()
        self._strike_view: tuple[int, StrikeView] | None = None
        self._clock = StoreClock(lambda: self.store)
        self.router = PartitionRouter(lambda: self.store, self.now)
        with _EXTENSIONS_LOCK:
            if app in _EXTENSIONS:
                raise ConfigurationError(f"Pyncette(app) was already created for {app.main!r}")
            _EXTENSIONS[app] = self

    # --- settings and store -----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The parsed settings, read from ``app.conf`` on first use (once the app is configured)."""
        if self._settings is None:
            self._settings = settings_from(self.app.conf, self._overrides)
        return self._settings

    @property
    def store(self) -> Store:
        """This process's store, set up on first use; re-created in a forked child."""
        pid = os.getpid()
        if self._store is None or self._store_pid != pid:
            with self._store_lock:
                if self._store is None or self._store_pid != pid:
                    settings = self.settings
                    store = store_from_url(
                        settings.url,
                        namespace=settings.namespace,
                        skip_table_create=settings.skip_table_create,
                    )
                    store.setup()
                    self._store, self._store_pid = store, pid
        return self._store

    def import_store(self) -> None:
        """Import the store's module (for SQL, SQLAlchemy) without connecting.

        Raises :class:`ConfigurationError` for invalid settings or a missing optional dependency.
        """
        store_class(self.settings.url)

    def open_store(self) -> None:
        """Open this process's store now and read its clock, instead of on first use.

        Raises what the store raises (:class:`StoreError` when it cannot be reached).
        """
        self.store  # noqa: B018 - sets it up: connects, creates the tables unless skipped
        self.now()

    @property
    def strike_view(self) -> StrikeView:
        """This process's view of the strikes, refreshed within ``poll_interval``."""
        pid = os.getpid()
        view = self._strike_view
        if view is None or view[0] != pid:
            view = (pid, StrikeView(self.store, self.settings.poll_interval))
            self._strike_view = view
        return view[1]

    def now(self) -> datetime:
        """The current time by the store's clock (see :class:`celery_pyncette.clock.StoreClock`)."""
        return self._clock.now()

    def close(self) -> None:
        """Close this process's store connection (idempotent)."""
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None and self._store_pid == os.getpid():
            store.close()

    # --- declarations -----------------------------------------------------------------------

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
        self.middlewares.append(function)
        return function

    def fixture(self, name: str | None = None) -> Callable[[F], F]:
        """Register a generator (or async generator) fixture, available as ``context.<name>``."""

        def register(function: F) -> F:
            if not (inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function)):
                raise ValueError(f"fixture {function!r} must be a generator function (yield once)")
            fixture_name = name or function.__name__
            if not fixture_name.isidentifier():
                raise ValueError(f"fixture name {fixture_name!r} is not an identifier")
            self.fixtures[fixture_name] = function
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

        def decorate(decorated: F) -> Any:
            function = self._functions.get(id(decorated), decorated)  # stacked decorators
            if not callable(function):
                raise ValueError(f"@pyncette.task decorates a function, got {function!r}")
            task_name = validate_task_name(
                name or self.app.gen_task_name(function.__name__, function.__module__)
            )
            if task_name in self._definitions:
                raise ValueError(
                    f"task {task_name!r} is already registered; give each schedule its own name="
                )
            definition = dataclasses.replace(template, name=task_name, celery_name=task_name)
            celery_task = self._celery_task(function, definition, dict(celery_options))
            self._definitions[task_name] = definition
            self._functions[id(celery_task)] = function
            return celery_task

        return decorate

    def _celery_task(
        self, function: Callable[..., Any], definition: TaskDefinition, options: dict[str, Any]
    ) -> Any:
        from celery_pyncette.worker import PyncetteTaskMixin

        base = options.pop("base", None) or self.app.Task
        if not issubclass(base, PyncetteTaskMixin):
            base = type(
                f"Pyncette{base.__name__}", (PyncetteTaskMixin, base), {"__module__": __name__}
            )
        if definition.execution_mode is ExecutionMode.AT_MOST_ONCE:
            # A redelivered message would run a second time: the broker must not redeliver.
            options["acks_late"] = False
        options.setdefault("shared", False)  # the task belongs to this app and its registry
        return self.app.task(name=definition.name, base=base, typing=False, **options)(function)

    # --- the registry -------------------------------------------------------------------------

    def definition(self, task: Any) -> TaskDefinition:
        """The definition of a task given as the decorated task object or its name.

        A name is the full name or, when unambiguous, the function's own name (see
        :mod:`celery_pyncette.lookup`); ``ValueError`` lists the candidates otherwise.
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

    def definitions(self) -> list[TaskDefinition]:
        """Every definition: declared tasks and ``beat_schedule`` entries.

        ``pyncette_enabled_partitions`` narrows the partitions this process polls; it must name
        partitioned tasks and partitions they have (``ConfigurationError`` otherwise).
        """
        merged = dict(self.beat_schedule_definitions())
        merged.update(self._definitions)
        for task, partitions in (self.settings.enabled_partitions or {}).items():
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

    def function(self, celery_task: Any) -> Callable[..., Any] | None:
        """The user function behind a task this extension declared."""
        return self._functions.get(id(celery_task))

    # --- dynamic tasks ------------------------------------------------------------------------

    def _dynamic_key(self, task: Any, instance: str) -> tuple[TaskDefinition, InstanceKey]:
        definition = self._dynamic_definition(task)
        return definition, self._instance_key(definition, instance)

    def _dynamic_definition(self, task: Any) -> TaskDefinition:
        definition = self.definition(task)
        if not definition.dynamic:
            raise ValueError(
                f"{definition.name!r} is a static task; schedule_task needs a dynamic_task"
            )
        self.check_partitions(definition)
        return definition

    def _instance_key(self, definition: TaskDefinition, instance: str) -> InstanceKey:
        return self.router.key(definition, validate_instance_name(instance))

    def check_partitions(self, definition: TaskDefinition) -> None:
        """Once per task and process: refuse a partition count that differs from the stored one."""
        self.router.layout(definition)

    @staticmethod
    def validate_schedule(
        schedule: str | None = None,
        interval: timedelta | None = None,
        execute_at: datetime | None = None,
        timezone: str | None = None,
    ) -> Schedule:
        """Check timing input as ``schedule_task`` would, writing nothing (e.g. in a form).

        Returns the schedule; raises ``ValueError`` naming the problem.
        """
        built = build_schedule(schedule, interval, execute_at, timezone, required=True)
        assert built is not None
        return built

    def schedule_task(
        self,
        task: Any,
        instance: str,
        *,
        schedule: str | None = None,
        interval: timedelta | None = None,
        execute_at: datetime | None = None,
        timezone: str | None = None,
        force: bool = False,
        **args: Any,
    ) -> TaskState:
        """Create or replace a dynamic instance; written to the store before this returns.

        Raises ``ValueError`` for invalid input (nothing is written), ``TaskLockedError`` when the
        instance is running and ``force`` is false, ``StoreError`` when the store fails.
        """
        definition, key = self._dynamic_key(task, instance)
        built: Schedule | None = build_schedule(
            schedule, interval, execute_at, timezone, required=True
        )
        assert built is not None
        record = self._new_record(
            key, built, validate_args({**definition.args, **args}), self.now()
        )
        self.store.upsert(record, self.now(), force=force)
        self.router.settle_one(definition, record, force)  # a repartition meanwhile: move it
        return TaskState.from_record(record)

    def schedule_tasks(
        self,
        task: Any,
        instances: Mapping[str, Mapping[str, Any]],
        *,
        schedule: str | None = None,
        interval: timedelta | None = None,
        execute_at: datetime | None = None,
        timezone: str | None = None,
        force: bool = False,
    ) -> list[str]:
        """Create or replace many instances with one timing: ``{instance: args}``.

        Everything is validated before anything is written; writes go through the store's bulk
        path. Returns the instances left unchanged because they are running (``force`` false).
        Raises :class:`BulkWriteError` (with ``.written``) when the store fails part-way.
        """
        built = build_schedule(schedule, interval, execute_at, timezone, required=True)
        assert built is not None
        return self._write_many(
            task, [(name, built, args) for name, args in instances.items()], force
        )

    def scatter(
        self,
        task: Any,
        instances: Mapping[str, Mapping[str, Any]] | Iterable[str],
        *,
        over: timedelta,
        start: datetime | None = None,
        jitter: timedelta | None = None,
        force: bool = False,
    ) -> list[str]:
        """Schedule once-off instances spread evenly over ``[start, start + over)``.

        Instance ``i`` of ``n`` runs at ``start + (i + 0.5) * over / n`` (one instance: the
        midpoint), moved by up to ``jitter`` either way but never before ``start``. ``instances``
        is ``{name: args}`` or just names. ``start`` defaults to now. Returns and raises like
        :meth:`schedule_tasks`.
        """
        if not isinstance(over, timedelta) or over <= timedelta(0):
            raise ValueError(f"over must be a positive timedelta, got {over!r}")
        check_duration(over, "over")
        if jitter is not None and (not isinstance(jitter, timedelta) or jitter < timedelta(0)):
            raise ValueError(f"jitter must be a non-negative timedelta, got {jitter!r}")
        begin = self.now() if start is None else start
        if begin.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        entries = (
            dict(instances) if isinstance(instances, Mapping) else {name: {} for name in instances}
        )
        count = len(entries)
        random = secrets.SystemRandom()
        planned: list[tuple[str, Schedule, Mapping[str, Any]]] = []
        for index, (name, args) in enumerate(entries.items()):
            at = begin + over * ((index + 0.5) / count)
            if jitter:
                at = max(begin, at + jitter * random.uniform(-1.0, 1.0))
            planned.append((name, OnceSchedule(at), args))
        return self._write_many(task, planned, force)

    def _write_many(
        self, task: Any, planned: list[tuple[str, Schedule, Mapping[str, Any]]], force: bool
    ) -> list[str]:
        now = self.now()
        definition = self._dynamic_definition(task)
        records: list[InstanceRecord] = []
        timings: dict[int, tuple[datetime, dict[str, Any]]] = {}  # per schedule object, not row
        for name, schedule, args in planned:
            key = self._instance_key(definition, name)
            merged = validate_args({**definition.args, **args}, f"arguments of {name!r}")
            timing = timings.get(id(schedule))
            if timing is None:
                first = self._new_record(key, schedule, {}, now)
                timing = timings[id(schedule)] = (first.next_run, dict(first.spec))
            records.append(InstanceRecord(key=key, next_run=timing[0], spec=timing[1], args=merged))
        store = self.store
        written: list[str] = []
        locked: list[str] = []
        for start in range(0, len(records), BULK_CHUNK):
            chunk = records[start : start + BULK_CHUNK]
            try:
                refused = {key.instance for key in store.upsert_many(chunk, now, force)}
            except StoreError as exc:
                raise BulkWriteError(
                    f"store failed after {len(written)} of {len(records)} instances: {exc}", written
                ) from exc
            locked.extend(r.key.instance for r in chunk if r.key.instance in refused)
            written.extend(r.key.instance for r in chunk if r.key.instance not in refused)
        return locked + self.router.settle(definition, records, force, refused=locked)

    @staticmethod
    def _new_record(
        key: InstanceKey, schedule: Schedule, args: Mapping[str, Any], now: datetime
    ) -> InstanceRecord:
        first = schedule.first_run(now)
        if first is None:
            raise ValueError(f"{schedule.description} has no occurrence after {now.isoformat()}")
        return InstanceRecord(key=key, next_run=first, spec=schedule.to_spec(), args=args)

    def unschedule_task(self, task: Any, instance: str) -> bool:
        """Remove a dynamic instance (even while it runs); return whether it existed."""
        return self.router.delete(*self._dynamic_key(task, instance))

    def get_task_state(self, task: Any, instance: str | None = None) -> TaskState | None:
        """The stored state of a dynamic instance (or of a static task with ``instance=None``)."""
        if instance is None:
            key = InstanceKey(self.definition(task).name, 0, STATIC_INSTANCE)
            record = self.store.get(key)
        else:
            record = self.router.get(*self._dynamic_key(task, instance))
        return TaskState.from_record(record) if record is not None else None

    def list_task_states(
        self, task: Any, limit: int = 100, continuation_token: str | None = None
    ) -> TaskStatePage:
        """A page of a dynamic task's instances, by partition then name; every instance once."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        definition = self.definition(task)
        partition, after = (
            (0, None) if continuation_token is None else decode_token(continuation_token)
        )
        states: list[TaskState] = []
        spanned = self.router.spanned(definition)
        while partition < spanned:
            page = self.store.list_instances(definition.name, partition, limit - len(states), after)
            states.extend(
                TaskState.from_record(r) for r in page if r.key.instance != STATIC_INSTANCE
            )
            if len(states) >= limit and page:
                return TaskStatePage(states, encode_token(partition, page[-1].key.instance))
            partition, after = partition + 1, None
        return TaskStatePage(states, None)

    async def aschedule_task(self, task: Any, instance: str, **kwargs: Any) -> TaskState:
        """Async twin of :meth:`schedule_task` (runs the store call in a thread)."""
        return await asyncio.to_thread(self.schedule_task, task, instance, **kwargs)

    async def aunschedule_task(self, task: Any, instance: str) -> bool:
        """Async twin of :meth:`unschedule_task`."""
        return await asyncio.to_thread(self.unschedule_task, task, instance)

    async def aget_task_state(self, task: Any, instance: str | None = None) -> TaskState | None:
        """Async twin of :meth:`get_task_state`."""
        return await asyncio.to_thread(self.get_task_state, task, instance)

    async def alist_task_states(
        self, task: Any, limit: int = 100, continuation_token: str | None = None
    ) -> TaskStatePage:
        """Async twin of :meth:`list_task_states`."""
        return await asyncio.to_thread(self.list_task_states, task, limit, continuation_token)

    # --- strikes --------------------------------------------------------------------------------

    def _strike(self, task: Any, parameter: str | None, operator: str | None, value: Any) -> Strike:
        name = None if task is None else self.definition(task).name
        if parameter is None:
            if operator is not None or value is not None:
                raise ValueError("a strike with an operator or value needs a parameter")
            if name is None:
                raise ValueError("a strike needs a task, a parameter, or both")
            return Strike(name)
        if not isinstance(parameter, str) or not parameter:
            raise ValueError(f"parameter must be a non-empty string, got {parameter!r}")
        if operator not in STRIKE_OPERATORS:
            raise ValueError(
                f"operator must be one of {', '.join(STRIKE_OPERATORS)}, got {operator!r}"
            )
        validate_args({"value": value}, "the strike value")
        return Strike(name, parameter, operator, value)

    def strike(
        self,
        task: Any,
        parameter: str | None = None,
        operator: str | None = None,
        value: Any = None,
    ) -> Strike:
        """Disable every occurrence of ``task`` (``None``: any task) whose argument matches."""
        struck = self._strike(task, parameter, operator, value)
        self.store.add_strike(struck)
        return struck

    def restore(
        self,
        task: Any,
        parameter: str | None = None,
        operator: str | None = None,
        value: Any = None,
    ) -> bool:
        """Remove a strike; return whether it existed."""
        return self.store.remove_strike(self._strike(task, parameter, operator, value))

    def strikes(self) -> list[Strike]:
        """Every strike in the store."""
        return self.store.list_strikes()
