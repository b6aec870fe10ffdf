"""Extra occurrences on demand: ``run_now`` and ``backfill``; mixed into ``Pyncette``.

Neither sends a message itself. Each writes extra occurrence records beside the instance (the
layout is in :mod:`celery_pyncette._records`), due at once, which beat claims and sends like any
other occurrence: under the task's execution and failure modes, leases, concurrency limits and
strikes, with ``context.instance`` the instance (``None`` for a static task) and
``context.scheduled_at`` the extra occurrence's time. The once-off schedule of an extra record
has no next run, so settling it deletes it; the instance's own record, and so its next run, is
never written. ``context.unschedule()`` / ``reschedule()`` in an extra run change the instance;
removing an instance removes its extra occurrences (:func:`celery_pyncette._extras.drop_extras`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery_pyncette import _backfill as backfill_rules
from celery_pyncette._definitions import TaskDefinition, validate_instance_name
from celery_pyncette._extras import extras_of
from celery_pyncette._instances import async_twin
from celery_pyncette._records import (
    BACKFILL,
    RUN_NOW,
    backfill_key,
    backfill_record,
    extra_key,
    extra_record,
)
from celery_pyncette._runtime import Runtime
from celery_pyncette.errors import TaskLockedError
from celery_pyncette.schedules import Schedule, schedule_from_spec
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, InstanceRecord


class ExtraRunsAPI:
    """``run_now`` and ``backfill``; mixed into :class:`~celery_pyncette.Pyncette`."""

    _runtime: Runtime

    def run_now(
        self, /, task: Any, instance: str | None = None, *, force: bool = False
    ) -> datetime:
        """Send one extra occurrence of ``instance`` of ``task`` (``None``: a static task) now.

        Beat sends it on its next tick, with ``context.scheduled_at`` = the time returned (now, by
        the store's clock) and the instance's current arguments; the schedule's next run does not
        move. Raises ``ValueError`` for an unknown task or instance, a static task given an
        instance, a dynamic one given none, or a disabled task (nothing is written);
        :class:`~celery_pyncette.errors.TaskLockedError` when the instance, or an extra run of
        it, is running and ``force`` is false.
        """
        definition, target, record, key = self._target(task, instance)
        now = self._runtime.now()
        if not force:
            self._refuse_running(definition, target, record, key, now)
        extra = extra_record(
            extra_key(definition.name, key.partition, target, now),
            target,
            now,
            {} if record is None else record.args,
            RUN_NOW,
        )
        self._runtime.store.upsert(extra, now)
        return now

    def backfill(
        self,
        /,
        task: Any,
        instance: str | None = None,
        *,
        start: datetime,
        end: datetime,
        max: int = backfill_rules.DEFAULT_MAX,
    ) -> list[datetime]:
        """Run each occurrence the schedule had in ``[start, end)`` once, each with its own
        ``context.scheduled_at``; the schedule does not move. Returns the occurrences written.

        ``end`` after now is taken as now (what is not yet due is the schedule's own). The
        occurrences of windows backfilled before are left out (a second backfill of a window
        runs nothing), and so is the instance's own pending next run. Raises ``ValueError``
        (nothing written) for a naive or misordered window, a start not in the past, a window
        holding more than ``max`` occurrences, or what :meth:`run_now` refuses.
        """
        definition, target, record, key = self._target(task, instance)
        now = self._runtime.now()
        window = backfill_rules.check_window(start, end, max, now)
        schedule = _schedule(definition, record)
        pending = None if record is None else record.next_run
        found = backfill_rules.occurrences(schedule, window, max, pending)
        store = self._runtime.store
        ledger = store.get(backfill_key(definition.name, target))
        done = backfill_rules.read_windows(None if ledger is None else ledger.args)
        chosen = [at for at in found if not backfill_rules.covered(at, done) and at != pending]
        args = {} if record is None else record.args
        records = [
            extra_record(
                extra_key(definition.name, key.partition, target, at), target, at, args, BACKFILL
            )
            for at in chosen
        ]
        # One refused is locked: that very occurrence, written by an earlier backfill, is running.
        refused = set(store.upsert_many(records, now)) if records else set()
        windows = backfill_rules.stored_windows(backfill_rules.merged(done, window))
        store.upsert(backfill_record(definition.name, target, windows, now), now, force=True)
        return [r.next_run for r in records if r.key not in refused]

    def _target(
        self, task: Any, instance: str | None
    ) -> tuple[TaskDefinition, str | None, InstanceRecord | None, InstanceKey]:
        """The definition, the instance (``None``: static), its stored record (``None`` for a
        static task beat has not written yet) and its key; ``ValueError`` when it cannot run."""
        runtime = self._runtime
        definition = runtime.definition(task)
        if not definition.enabled:
            raise ValueError(f"{definition.name!r} is disabled: no beat would send its run")
        if not definition.dynamic:
            if instance is not None:
                raise ValueError(f"{definition.name!r} is a static task: it has no instances")
            key = InstanceKey(definition.name, 0, STATIC_INSTANCE)
            return definition, None, runtime.store.get(key), key
        if instance is None:
            raise ValueError(f"{definition.name!r} is a dynamic task: name the instance to run")
        runtime.router.layout(definition)
        wanted = runtime.router.key(definition, validate_instance_name(instance))
        record = runtime.router.get(definition, wanted)
        if record is None:
            raise ValueError(f"{definition.name!r} has no instance {instance!r}")
        return definition, instance, record, record.key

    def _refuse_running(
        self,
        definition: TaskDefinition,
        target: str | None,
        record: InstanceRecord | None,
        key: InstanceKey,
        now: datetime,
    ) -> None:
        """:class:`TaskLockedError` when the instance or one of its extra runs holds a lease."""
        what = definition.name if target is None else f"{definition.name}[{target}]"
        if record is not None and record.is_locked(now):
            raise TaskLockedError(f"{what} is running (pass force=True to run it again now)")
        store = self._runtime.store
        if any(e.is_locked(now) for e in extras_of(store, definition.name, key.partition, target)):
            raise TaskLockedError(
                f"an extra run of {what} is running (pass force=True to run it again now)"
            )

    arun_now = async_twin(run_now)
    abackfill = async_twin(backfill)


def _schedule(definition: TaskDefinition, record: InstanceRecord | None) -> Schedule:
    """The schedule whose occurrences a backfill runs: the code's for a static task, the stored
    one for a dynamic instance (``ValueError`` when it cannot be rebuilt)."""
    if definition.schedule is not None and not definition.dynamic:
        return definition.schedule
    assert record is not None
    return schedule_from_spec(record.spec)
