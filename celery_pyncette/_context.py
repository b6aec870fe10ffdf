"""The execution context handed to every pyncette task, and ``current_context()``."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery_pyncette._definitions import build_schedule, validate_args
from celery_pyncette._options import arguments_from
from celery_pyncette._task_logger import OccurrenceLogger, task_logger
from celery_pyncette._window_options import Window
from celery_pyncette.errors import LeaseLostError
from celery_pyncette.schedules import OnceSchedule, schedule_from_spec

if TYPE_CHECKING:
    from celery_pyncette._definitions import TaskDefinition
    from celery_pyncette._occurrence import Occurrence
    from celery_pyncette._runtime import Runtime
    from celery_pyncette.schedules import Schedule

_CURRENT: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "celery_pyncette_context", default=None
)


class Context:
    """What an execution knows about itself.

    ``args`` are the instance's arguments; ``task`` the definition; ``instance`` the dynamic
    instance name (``None`` for a static task); ``scheduled_at`` when the occurrence was due (aware
    UTC; ``None`` for a direct ``.delay()`` call). Fixtures are attributes (``context.db``).
    ``logger`` logs with the occurrence in every record (:mod:`celery_pyncette._task_logger`).
    """

    def __init__(
        self,
        *,
        runtime: Runtime,
        task: TaskDefinition,
        args: Mapping[str, Any],
        occurrence: Occurrence | None,
    ) -> None:
        self._runtime = runtime
        self.task = task
        self.args: dict[str, Any] = dict(args)
        self.occurrence = occurrence
        self.instance: str | None = occurrence.instance if occurrence else None
        self.scheduled_at: datetime | None = occurrence.scheduled_at if occurrence else None
        self.locked_until: datetime | None = occurrence.locked_until if occurrence else None
        self._fixtures: dict[str, Any] = {}
        #: Set by a background heartbeat (``@with_heartbeat``) that found the lease lost.
        self.lease_lost = False
        #: Set by :meth:`unschedule` / :meth:`reschedule`; applied when the execution ends.
        self.unscheduled = False
        self.rescheduled: tuple[Schedule, dict[str, Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        fixtures = self.__dict__.get("_fixtures", {})
        if name in fixtures:
            return fixtures[name]
        raise AttributeError(f"context has no attribute or fixture {name!r}")

    def __repr__(self) -> str:
        return (
            f"Context(task={self.task.name!r}, instance={self.instance!r}, "
            f"scheduled_at={self.scheduled_at!r})"
        )

    def use_fixtures(self, fixtures: Mapping[str, Any]) -> None:
        """Make fixture values available as attributes."""
        self._fixtures = dict(fixtures)

    @functools.cached_property
    def logger(self) -> OccurrenceLogger:
        """A :class:`logging.LoggerAdapter` over ``get_task_logger`` of the task function's
        module whose records carry ``task``, ``instance``, ``scheduled_at`` and ``log_args`` as
        attributes and start with ``[task=… instance=… scheduled_at=…]``."""
        task = self.task
        return task_logger(
            self._runtime.catalog.module_of(task.name),
            task.celery_name,
            task.name,
            self.instance,
            self.scheduled_at,
            self.args,
            task.log_args,
        )

    @property
    def lease_duration(self) -> timedelta:
        """The lease this task runs under (its own, or the app's default)."""
        return self.task.lease_duration or self._runtime.settings.lease_duration

    def took_lease(self, occurrence: Occurrence) -> None:
        """The execution took its own lease at start: heartbeats use ``occurrence``'s token."""
        self.occurrence = occurrence
        self.locked_until = occurrence.locked_until

    def heartbeat(self) -> None:
        """Extend the lease by ``lease_duration`` from now.

        Raises :class:`~celery_pyncette.errors.LeaseLostError` when the lease was already lost
        (expired and taken by another claim, or the instance was unscheduled or replaced). Does
        nothing for executions that hold no lease (at-most-once, or a direct call).
        """
        occurrence = self.occurrence
        if occurrence is None or occurrence.lease is None:
            return
        store = self._runtime.store  # first: opening it may take a while
        until = self._runtime.now() + self.lease_duration
        store.extend_lease(occurrence.key, occurrence.lease, until)
        self.locked_until = until
        if occurrence.slot is not None:
            # A slot that expired and went to another occurrence: the limit was briefly exceeded.
            with contextlib.suppress(LeaseLostError):
                store.extend_lease(occurrence.slot[0], occurrence.slot[1], until)

    def unschedule(self) -> None:
        """Remove this dynamic instance once the execution ends (no later runs)."""
        self._require_dynamic("unschedule")
        self.unscheduled = True

    def reschedule(
        self,
        schedule: str | None = None,
        interval: timedelta | None = None,
        execute_at: datetime | None = None,
        timezone: str | None = None,
        args: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        """Change the timing and/or arguments of this dynamic instance's later runs.

        Arguments not given keep their values (a new timing keeps the instance's ``start_at``,
        ``end_at`` and ``jitter``); ``args=`` carries arguments whose names look like
        options (an extra keyword named like an option, or close to one, raises ``ValueError``).
        Applied when the execution ends.
        """
        self._require_dynamic("reschedule")
        changed = arguments_from(extra, args, where="context.reschedule")
        built = build_schedule(schedule, interval, execute_at, timezone, required=False)
        spec = self.instance_spec()
        if built is None:
            if spec is None:
                raise ValueError("reschedule needs a schedule, interval or execute_at")
            built = schedule_from_spec(spec)
        elif spec is not None:
            window = Window.of_spec(spec)
            if isinstance(built, OnceSchedule):  # a once-off runs at the time given
                window = dataclasses.replace(window, jitter=None)
            built = window.apply(built)
        new_args = validate_args({**self.args, **changed})
        self.rescheduled = (built, new_args)

    def instance_spec(self) -> Mapping[str, Any] | None:
        """The instance's stored spec: the message's, or for an extra occurrence (whose message
        carries its once-off) the instance's stored one."""
        occurrence = self.occurrence
        spec = None if occurrence is None else occurrence.spec
        if occurrence is not None and occurrence.record is not None:
            stored = self._runtime.store.get(occurrence.instance_key)
            spec = None if stored is None else stored.spec
        return spec

    def _require_dynamic(self, what: str) -> None:
        if self.instance is None:
            raise ValueError(
                f"{what}() works only in an execution of a dynamic instance sent by beat"
            )


#: Attributes every context sets in ``__init__``, beside the methods and properties of the class
#: (``logger`` is one of those).
_INSTANCE_ATTRIBUTES = frozenset(
    {
        "task", "args", "occurrence", "instance", "scheduled_at", "locked_until", "lease_lost",
        "unscheduled", "rescheduled", "_runtime", "_fixtures",
    }
)  # fmt: skip
#: Names a fixture cannot take: a context attribute of that name would hide the fixture.
RESERVED_FIXTURE_NAMES = frozenset(dir(Context)) | _INSTANCE_ATTRIBUTES


def current_context() -> Context | None:
    """The context of the pyncette execution running in this thread or task, if any."""
    return _CURRENT.get()


def set_current(context: Context | None) -> contextvars.Token[Context | None]:
    """Make ``context`` current; return the token that :func:`reset_current` takes."""
    return _CURRENT.set(context)


def reset_current(token: contextvars.Token[Context | None]) -> None:
    """Restore the context that was current before :func:`set_current`."""
    _CURRENT.reset(token)
