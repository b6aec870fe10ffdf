"""The instance API of ``Pyncette``: dynamic instances written, read and listed at run time.

``schedule_task`` and friends validate everything before writing, write to the store before they
return, and route an instance to the partition the stored layout names (re-read after a write, so a
repartition meanwhile moves it; see :mod:`celery_pyncette._routing`). Each has an ``async`` twin,
made once by :func:`async_twin`, that runs it in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from celery_pyncette import _misfire as misfire
from celery_pyncette import _runs as runs
from celery_pyncette._bounds import check_duration
from celery_pyncette._definitions import (
    TaskDefinition,
    build_schedule,
    validate_args,
    validate_instance_name,
)
from celery_pyncette._extras import drop_extras
from celery_pyncette._options import arguments_from
from celery_pyncette._records import is_extra_instance
from celery_pyncette._runtime import Runtime
from celery_pyncette._state import TaskState, TaskStatePage, decode_token, encode_token
from celery_pyncette._window_options import Window
from celery_pyncette.errors import BulkWriteError, StoreError
from celery_pyncette.schedules import JitteredSchedule, OnceSchedule, Schedule
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord, Run

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")

#: Instances per bulk write of schedule_tasks() / scatter().
BULK_CHUNK = 500


def async_twin(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """An ``async`` version of ``method`` that runs it in a thread (``asyncio.to_thread``)."""

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self, *args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"a{method.__name__}"
    twin.__doc__ = f"Async twin of :meth:`{method.__name__}` (runs it in a thread)."
    return twin


class InstanceAPI:
    """Dynamic instances; mixed into :class:`~celery_pyncette.Pyncette`."""

    _runtime: Runtime

    def _dynamic_key(self, task: Any, instance: str) -> tuple[TaskDefinition, InstanceKey]:
        definition = self._dynamic_definition(task)
        return definition, self._instance_key(definition, instance)

    def _dynamic_definition(self, task: Any) -> TaskDefinition:
        definition = self._runtime.definition(task)
        if not definition.dynamic:
            raise ValueError(
                f"{definition.name!r} is a static task; schedule_task needs a dynamic_task"
            )
        self.check_partitions(definition)
        return definition

    def _instance_key(self, definition: TaskDefinition, instance: str) -> InstanceKey:
        return self._runtime.router.key(definition, validate_instance_name(instance))

    def check_partitions(self, definition: TaskDefinition) -> None:
        """Once per task and process: refuse a partition count that differs from the stored one."""
        self._runtime.router.layout(definition)

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
        /,
        task: Any,
        instance: str,
        *,
        schedule: str | None = None,
        interval: timedelta | None = None,
        execute_at: datetime | None = None,
        timezone: str | None = None,
        force: bool = False,
        args: Mapping[str, Any] | None = None,
        misfire_grace: timedelta | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        jitter: timedelta | None = None,
        max_runs: int | None = None,
        **extra: Any,
    ) -> TaskState:
        """Create or replace a dynamic instance; written to the store before this returns.

        With no ``schedule`` / ``interval`` / ``execute_at`` the template's default timing is
        used; one given replaces it. ``start_at`` / ``end_at`` / ``jitter`` each default to the
        template's. The arguments are the template's defaults, then ``args=``
        and the extra keywords (an extra keyword named like an option, or close to one, raises
        ``ValueError``: such names go in ``args=``). ``misfire_grace`` is stored with the
        instance and replaces the task's (see :mod:`celery_pyncette._misfire`).

        Raises ``ValueError`` for invalid input (nothing is written), ``TaskLockedError`` when the
        instance is running and ``force`` is false, ``StoreError`` when the store fails.
        """
        definition, key = self._dynamic_key(task, instance)
        call_args = arguments_from(extra, args, where="schedule_task")
        grace = misfire.check_grace(misfire_grace)
        built = Window.of(start_at, end_at, jitter).applied_over(
            definition.window,
            definition.default_timing.resolve(schedule, interval, execute_at, timezone),
        )
        record = self._new_record(
            key, built, validate_args({**definition.args, **call_args}), self._runtime.now()
        )
        if grace is not None:
            record = record.with_changes(spec=misfire.with_grace(record.spec, grace))
        record = runs.with_max_runs(record, runs.parse_max_runs(max_runs) or definition.max_runs)
        # The same timing keeps the stored next run (decided by the store, atomically); force
        # replaces the instance whole, its timer too.
        kept = self._runtime.store.upsert(
            record, self._runtime.now(), force=force, keep_next_run=not force
        )
        record = record.with_changes(next_run=kept)
        record = self._runtime.router.settle_one(
            definition, record, force, keep_next_run=not force
        )  # a repartition meanwhile: move it
        return self._state_of(record)

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
        args: Mapping[str, Any] | None = None,
        misfire_grace: timedelta | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        jitter: timedelta | None = None,
        max_runs: int | None = None,
    ) -> list[str]:
        """Create or replace many instances with one timing: ``{instance: args}``.

        The timing defaults to the template's, as in :meth:`schedule_task`. Each instance's
        arguments are the template's defaults, then the common ``args=``, then its own.
        Everything is validated before anything is written; writes go through the store's bulk
        path; ``misfire_grace`` is stored with each instance, as in :meth:`schedule_task`.
        Returns the instances left unchanged because they are running (``force`` false).
        Raises :class:`BulkWriteError` (with ``.written``) when the store fails part-way.
        """
        definition = self._dynamic_definition(task)
        common = arguments_from({}, args, where="schedule_tasks")
        grace = misfire.check_grace(misfire_grace)
        if not isinstance(instances, Mapping) or not all(
            isinstance(own, Mapping) for own in instances.values()
        ):
            raise ValueError("instances must be a mapping of instance name to its arguments")
        built = Window.of(start_at, end_at, jitter).applied_over(
            definition.window,
            definition.default_timing.resolve(schedule, interval, execute_at, timezone),
        )
        limit = runs.parse_max_runs(max_runs)
        return self._write_many(
            task,
            [(name, built, {**common, **own}) for name, own in instances.items()],
            force,
            grace,
            limit,
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
        begin = self._runtime.now() if start is None else start
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
        self,
        task: Any,
        planned: list[tuple[str, Schedule, Mapping[str, Any]]],
        force: bool,
        grace: timedelta | None = None,
        max_runs: int | None = None,
    ) -> list[str]:
        now = self._runtime.now()
        definition = self._dynamic_definition(task)
        max_runs = max_runs or definition.max_runs
        records: list[InstanceRecord] = []
        timings: dict[int, tuple[datetime, dict[str, Any]]] = {}  # per schedule object, not row
        for name, schedule, args in planned:
            key = self._instance_key(definition, name)
            merged = validate_args({**definition.args, **args}, f"arguments of {name!r}")
            # A jittered schedule's first run depends on the instance: computed for each.
            timing = None if isinstance(schedule, JitteredSchedule) else timings.get(id(schedule))
            if timing is None:
                first = self._new_record(key, schedule, {}, now)
                spec = misfire.with_grace(first.spec, grace)
                timing = timings[id(schedule)] = (first.next_run, spec)
            record = InstanceRecord(key=key, next_run=timing[0], spec=timing[1], args=merged)
            records.append(runs.with_max_runs(record, max_runs))
        return self._write_records(definition, records, now, force)

    def _write_instances(
        self,
        task: Any,
        planned: Sequence[tuple[str, Schedule, Mapping[str, Any], datetime]],
        force: bool,
    ) -> list[str]:
        """Create or replace instances each with its own schedule *and next run* (an import).

        Validates, merges the task's default arguments and routes like :meth:`schedule_tasks`
        (every name and argument is checked before anything is written); returns and raises
        like it. Each next run (an aware datetime) is written as given: the caller decides what
        an overdue one becomes.
        """
        now = self._runtime.now()
        definition = self._dynamic_definition(task)
        records = [
            InstanceRecord(
                key=self._instance_key(definition, name),
                next_run=next_run,
                spec=schedule.to_spec(),
                args=validate_args({**definition.args, **args}, f"arguments of {name!r}"),
            )
            for name, schedule, args, next_run in planned
        ]
        return self._write_records(definition, records, now, force)

    def _write_records(
        self,
        definition: TaskDefinition,
        records: Sequence[InstanceRecord],
        now: datetime,
        force: bool,
    ) -> list[str]:
        """Bulk-write ``records`` in chunks, then let the router move what a repartition meanwhile
        routes elsewhere; the instances left unchanged because they run (``force`` false)."""
        store = self._runtime.store
        written: list[str] = []
        locked: list[str] = []
        for start in range(0, len(records), BULK_CHUNK):
            chunk = records[start : start + BULK_CHUNK]
            try:
                refused = {
                    key.instance
                    for key in store.upsert_many(chunk, now, force, keep_next_run=not force)
                }
            except StoreError as exc:
                raise BulkWriteError(
                    f"store failed after {len(written)} of {len(records)} instances: {exc}", written
                ) from exc
            locked.extend(r.key.instance for r in chunk if r.key.instance in refused)
            written.extend(r.key.instance for r in chunk if r.key.instance not in refused)
        return locked + self._runtime.router.settle(
            definition, records, force, refused=locked, keep_next_run=not force
        )

    @staticmethod
    def _new_record(
        key: InstanceKey, schedule: Schedule, args: Mapping[str, Any], now: datetime
    ) -> InstanceRecord:
        first = schedule.bound_to(key.task, key.instance).first_run(now)
        if first is None:
            raise ValueError(f"{schedule.description} has no occurrence after {now.isoformat()}")
        return InstanceRecord(key=key, next_run=first, spec=schedule.to_spec(), args=args)

    def unschedule_task(self, /, task: Any, instance: str) -> bool:
        """Remove a dynamic instance (even while it runs), and any run now or backfill of it not
        run yet; return whether it existed."""
        definition, key = self._dynamic_key(task, instance)
        removed = self._runtime.router.delete(definition, key)
        drop_extras(self._runtime.store, [key, *self._runtime.router.other_keys(definition, key)])
        return removed

    def get_task_state(self, /, task: Any, instance: str | None = None) -> TaskState | None:
        """The stored state of a dynamic instance (or of a static task with ``instance=None``)."""
        if instance is None:
            key = InstanceKey(self._runtime.definition(task).name, 0, STATIC_INSTANCE)
            record = self._runtime.store.get(key)
        else:
            record = self._runtime.router.get(*self._dynamic_key(task, instance))
        return self._state_of(record) if record is not None else None

    def _state_of(self, record: InstanceRecord) -> TaskState:
        """The state of ``record``, with its runs left when it has a ``max_runs`` (read from the
        store's count of settled runs)."""
        state = TaskState.from_record(record)
        default = self._runtime.definition(record.key.task).max_runs
        limit = runs.max_runs_of(record.key, record.spec, default)
        if limit is None:
            return state
        log = self._runtime.store.run_log(record.key, 1)
        return replace(state, max_runs=limit, runs_left=runs.runs_left(limit, log))

    def history(self, /, task: Any, instance: str | None = None, limit: int = 20) -> list[Run]:
        """The last ``limit`` settled runs of a dynamic instance (or of a static task with
        ``instance=None``), newest first; empty for an instance that does not exist (or when
        ``pyncette_history_size`` is 0). ``ValueError`` for a limit that is not a positive int."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        if instance is None:
            key = InstanceKey(self._runtime.definition(task).name, 0, STATIC_INSTANCE)
        else:
            record = self._runtime.router.get(*self._dynamic_key(task, instance))
            if record is None:
                return []
            key = record.key
        return self._runtime.store.run_log(key, limit).runs

    def list_task_states(
        self, /, task: Any, limit: int = 100, continuation_token: str | None = None
    ) -> TaskStatePage:
        """A page of a dynamic task's instances, by partition then name; every instance once."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        definition = self._runtime.definition(task)
        if not definition.dynamic:
            raise ValueError(f"{definition.name!r} is a static task: it has no instances to list")
        partition, after = (
            (0, None) if continuation_token is None else decode_token(continuation_token)
        )
        states: list[TaskState] = []
        spanned = self._runtime.router.spanned(definition)
        while partition < spanned:
            page = self._runtime.store.list_instances(
                definition.name, partition, limit - len(states), after
            )
            states.extend(
                self._state_of(r)
                for r in page
                if r.key.instance != STATIC_INSTANCE and not is_extra_instance(r.key.instance)
            )
            if len(states) >= limit and page:
                return TaskStatePage(states, encode_token(partition, page[-1].key.instance))
            partition, after = partition + 1, None
        return TaskStatePage(states, None)

    aschedule_task = async_twin(schedule_task)
    aunschedule_task = async_twin(unschedule_task)
    aget_task_state = async_twin(get_task_state)
    alist_task_states = async_twin(list_task_states)
    ahistory = async_twin(history)
