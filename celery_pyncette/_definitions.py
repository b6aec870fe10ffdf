"""Task definitions, execution and failure modes, and validation of user input.

A :class:`TaskDefinition` is what a decorator registers: a static task (one schedule, one stored
record) or a dynamic task (a template whose instances are scheduled at run time). Everything a user
passes is validated here, before anything is written: invalid input raises ``ValueError`` naming
the problem.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette import _bounds as bounds
from celery_pyncette import _logs as logs
from celery_pyncette import _misfire as misfire
from celery_pyncette._concurrency import ConcurrencyLimit
from celery_pyncette._names import (  # noqa: F401 - re-exported limits
    MAX_INSTANCE_BYTES,
    MAX_TASK_NAME,
    check_instance_name,
    check_task_name,
)
from celery_pyncette._options import CELERY_TASK_OPTIONS, MESSAGE_OPTIONS, arguments_from
from celery_pyncette._runs import parse_max_runs
from celery_pyncette._window_options import Window
from celery_pyncette.schedules import (
    CronSchedule,
    IntervalSchedule,
    OnceSchedule,
    Schedule,
    parse_timezone,
)

#: Largest JSON encoding of one instance's arguments, equal for every store (DynamoDB's item limit
#: is 400 KB; the rest of the record must fit beside the arguments).
MAX_ARGS_BYTES = 256 * 1024


class ExecutionMode(enum.Enum):
    """How often an occurrence may run."""

    #: Locked under a lease when sent; committed by the worker on success; re-sent after a lost
    #: execution. The default.
    AT_LEAST_ONCE = "at_least_once"
    #: Committed by beat before the message is sent: never retried, never duplicated.
    AT_MOST_ONCE = "at_most_once"


class FailureMode(enum.Enum):
    """What an at-least-once execution that raised does with its lease."""

    #: Keep the lease: the occurrence is sent again once the lease expires.
    NONE = "none"
    #: Release the lease: the occurrence is sent again on the next tick.
    UNLOCK = "unlock"
    #: Commit as if it had succeeded (recorded with status ``failed``).
    COMMIT = "commit"


@dataclass(frozen=True, slots=True)
class DefaultTiming:
    """A dynamic template's default timing, which ``schedule_task`` uses when a call gives none.

    Kept apart from :attr:`TaskDefinition.schedule` (a template is never a static schedule).
    At most one of ``schedule`` (cron) and ``interval`` is set; ``timezone`` is the zone of any
    cron an instance ends up with, unless the call names its own.
    """

    schedule: str | None = None
    interval: timedelta | None = None
    timezone: str | None = None

    def resolve(
        self,
        schedule: str | None = None,
        interval: timedelta | None = None,
        execute_at: datetime | None = None,
        timezone: str | None = None,
    ) -> Schedule:
        """The schedule of one instance: the call's timing, else this default.

        A timing given by the call (``schedule``, ``interval`` or ``execute_at``) replaces the
        default's timing entirely (an ``interval`` over a default cron is not two timings); the
        default zone applies to a cron when the call names no zone. ``ValueError`` when neither
        the call nor the default has a timing, or the combination is invalid.
        """
        if schedule is None and interval is None and execute_at is None:
            if self.schedule is None and self.interval is None:
                raise ValueError(
                    "give schedule (a cron expression), interval or execute_at: "
                    "the task has no default timing"
                )
            schedule, interval = self.schedule, self.interval
        if timezone is None and schedule is not None:
            timezone = self.timezone
        built = build_schedule(schedule, interval, execute_at, timezone, required=True)
        assert built is not None
        return built


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """One registered schedule (static) or template (dynamic).

    ``name`` is the schedule's identity in the store and, for tasks declared with the decorators,
    the Celery task name too. ``celery_name`` is the Celery task that runs it (differs only for
    ``beat_schedule`` entries, whose entry name is the identity).
    """

    name: str
    celery_name: str
    schedule: Schedule | None
    dynamic: bool = False
    execution_mode: ExecutionMode = ExecutionMode.AT_LEAST_ONCE
    failure_mode: FailureMode = FailureMode.NONE
    lease_duration: timedelta | None = None
    enabled: bool = True
    catch_up: bool = False
    args: Mapping[str, Any] = field(default_factory=dict)
    partition_count: int = 1
    partition_selector: Callable[[int, str], int] | None = None
    enabled_partitions: tuple[int, ...] | None = None
    #: Celery routing/execution options for the message (queue, priority, expires, ...).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Positional arguments of a ``beat_schedule`` entry (plain Celery tasks only).
    positional: tuple[Any, ...] = ()
    #: At most this many running occurrences (per task, or per value of one argument).
    concurrency_limit: ConcurrencyLimit | None = None
    #: Arguments that may appear in log lines, and how: ``(name, "value" | "length")``.
    log_args: tuple[tuple[str, str], ...] = ()
    #: A dynamic template's default timing for ``schedule_task`` (``schedule`` stays ``None``).
    default_timing: DefaultTiming = DefaultTiming()
    #: Occurrences claimed later than this after their time are settled as missed, not run.
    misfire_grace: timedelta | None = None
    #: ``start_at`` / ``end_at`` / ``jitter``: in a static task's schedule already; a dynamic
    #: template's defaults for its instances.
    window: Window = field(default_factory=Window)
    #: After this many settled runs a static task has no next run; a dynamic template's default
    #: for its instances (see :mod:`celery_pyncette._runs`).
    max_runs: int | None = None

    def describe(self, instance: str | None, scheduled_at: Any, args: Mapping[str, Any]) -> str:
        """The log form of one occurrence (arguments only where marked loggable)."""
        return logs.occurrence(self.name, instance, scheduled_at, args, self.log_args)

    @property
    def polled_partitions(self) -> tuple[int, ...]:
        """The partitions this process claims from."""
        if self.enabled_partitions is not None:
            return self.enabled_partitions
        return tuple(range(self.partition_count))


def validate_args(args: Mapping[str, Any], what: str = "arguments") -> dict[str, Any]:
    """Return ``args`` as a plain dict after checking it is JSON-serialisable and small enough."""
    try:
        encoded = json.dumps(dict(args), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    if len(encoded.encode()) > MAX_ARGS_BYTES:
        raise ValueError(
            f"{what} are {len(encoded.encode())} bytes as JSON; the limit is {MAX_ARGS_BYTES}"
        )
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def validate_instance_name(instance: Any) -> str:
    """Check a dynamic instance name (see :mod:`celery_pyncette._names` for the rules)."""
    return check_instance_name(instance)


def validate_task_name(name: Any) -> str:
    """Check a task name (see :mod:`celery_pyncette._names` for the rules)."""
    return check_task_name(name)


def build_schedule(
    schedule: str | None = None,
    interval: timedelta | None = None,
    execute_at: datetime | None = None,
    timezone: str | None = None,
    *,
    required: bool,
) -> Schedule | None:
    """Build a schedule from exactly one of ``schedule`` (cron), ``interval``, ``execute_at``.

    With ``required=False`` none at all is allowed (a dynamic template). ``timezone`` applies to a
    cron only; it is also validated when given without one (so a template's bad zone is caught at
    decoration time).
    """
    given = [
        n
        for n, v in (("schedule", schedule), ("interval", interval), ("execute_at", execute_at))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"give exactly one of schedule, interval, execute_at (got {', '.join(given)})"
        )
    if timezone is not None:
        if not isinstance(timezone, str):
            raise ValueError(f"timezone must be a zone name, got {timezone!r}")
        parse_timezone(timezone)
        if schedule is None and given:
            raise ValueError("timezone applies to a cron schedule only")
    if not given:
        if required:
            raise ValueError("give exactly one of schedule (a cron expression) or interval")
        return None
    if schedule is not None:
        if not isinstance(schedule, str):
            raise ValueError(f"schedule must be a cron expression string, got {schedule!r}")
        return CronSchedule(schedule, timezone)
    if interval is not None:
        if not isinstance(interval, timedelta):
            raise ValueError(f"interval must be a timedelta, got {interval!r}")
        return IntervalSchedule(interval)
    if not isinstance(execute_at, datetime):
        raise ValueError(f"execute_at must be a datetime, got {execute_at!r}")
    return OnceSchedule(execute_at)


def validate_modes(
    execution_mode: Any, failure_mode: Any, lease_duration: Any
) -> tuple[ExecutionMode, FailureMode, timedelta | None]:
    """Check the reliability options and their combination."""
    if not isinstance(execution_mode, ExecutionMode):
        raise ValueError(f"execution_mode must be an ExecutionMode, got {execution_mode!r}")
    if not isinstance(failure_mode, FailureMode):
        raise ValueError(f"failure_mode must be a FailureMode, got {failure_mode!r}")
    if execution_mode is ExecutionMode.AT_MOST_ONCE and failure_mode is not FailureMode.NONE:
        raise ValueError(
            f"failure_mode {failure_mode.name} needs AT_LEAST_ONCE: an at-most-once task is "
            "committed before it runs, so a failure has no lease to unlock or commit"
        )
    if lease_duration is not None:
        if not isinstance(lease_duration, timedelta):
            raise ValueError(f"lease_duration must be a positive timedelta, got {lease_duration!r}")
        bounds.check_duration(lease_duration, "lease_duration")
    return execution_mode, failure_mode, lease_duration


def default_partition_selector(partition_count: int, instance: str) -> int:
    """Pyncette's selector: the SHA-1 of the instance name (UTF-8), a big-endian 160-bit integer,
    scaled onto the partitions as a range, ``(sha1 * partition_count) >> 160``.

    Stable across processes, machines and Python versions (unlike ``hash()``). Multiplying the
    count by ``k`` splits partition ``p`` into ``k*p .. k*p + k - 1`` (doubling: ``2p`` and
    ``2p + 1``). Versions up to 0.1.0 took the digest modulo the count; the stored partition
    layout says which form placed a task's instances (:mod:`celery_pyncette._partitions`).
    """
    digest = hashlib.sha1(instance.encode(), usedforsecurity=False).digest()
    return (int.from_bytes(digest, "big") * partition_count) >> 160


def validate_partitions(
    partition_count: Any,
    selector: Callable[[int, str], int],
    enabled_partitions: Iterable[int] | None,
) -> tuple[int, Callable[[int, str], int], tuple[int, ...] | None]:
    """Check the options of ``partitioned_task``."""
    if (
        isinstance(partition_count, bool)
        or not isinstance(partition_count, int)
        or partition_count < 1
    ):
        raise ValueError(f"partition_count must be a positive integer, got {partition_count!r}")
    if not callable(selector):
        raise ValueError(f"partition_selector must be callable, got {selector!r}")
    enabled = None
    if enabled_partitions is not None:
        enabled = tuple(sorted(set(enabled_partitions)))
        bad = [p for p in enabled if not isinstance(p, int) or not 0 <= p < partition_count]
        if bad:
            raise ValueError(f"enabled_partitions {bad} are outside 0..{partition_count - 1}")
    return partition_count, selector, enabled


def parse_task_options(
    options: Mapping[str, Any],
    *,
    dynamic: bool,
    partitions: tuple[int, Callable[[int, str], int], tuple[int, ...] | None] | None = None,
) -> tuple[TaskDefinition, dict[str, Any], str | None]:
    """Validate the keywords of a task decorator.

    Returns a definition (its ``name`` still empty), the Celery task options, and the ``name=``
    given, if any. Schedule options, modes and limits are checked here; Celery's own task options
    pass through; ``args=`` and every other keyword are arguments (checked by
    :func:`arguments_from`) and must be JSON-serialisable. A dynamic template's ``schedule`` /
    ``interval`` / ``timezone`` are optional defaults for ``schedule_task``
    (:attr:`TaskDefinition.default_timing`).
    """
    options = dict(options)
    kind = "partitioned_task" if partitions is not None else "dynamic_task" if dynamic else "task"
    where = f"@pyncette.{kind}"
    cron, interval, zone = (options.pop(k, None) for k in ("schedule", "interval", "timezone"))
    built = build_schedule(cron, interval, None, zone, required=not dynamic)
    window = Window.pop_from(options)
    schedule, default_timing = None if built is None else window.apply(built), DefaultTiming()
    if dynamic:
        schedule, default_timing = None, DefaultTiming(cron, interval, zone)
    execution_mode, failure_mode, lease_duration = validate_modes(
        options.pop("execution_mode", ExecutionMode.AT_LEAST_ONCE),
        options.pop("failure_mode", FailureMode.NONE),
        options.pop("lease_duration", None),
    )
    enabled = options.pop("enabled", True)
    catch_up = options.pop("catch_up", False)
    if not isinstance(enabled, bool) or not isinstance(catch_up, bool):
        raise ValueError("enabled and catch_up must be True or False")
    name = options.pop("name", None)
    concurrency_limit = ConcurrencyLimit.parse(options.pop("concurrency_limit", None))
    log_args = logs.parse_log_args(options.pop("log_args", None))
    misfire_grace = misfire.check_grace(options.pop("misfire_grace", None))
    max_runs = parse_max_runs(options.pop("max_runs", None))
    celery_options = {k: options.pop(k) for k in list(options) if k in CELERY_TASK_OPTIONS}
    if isinstance(misfire.check_expires(celery_options.get("expires")), timedelta):
        celery_options["expires"] = celery_options["expires"].total_seconds()  # Celery's form
    explicit = options.pop("args", None)
    args = validate_args(arguments_from(options, explicit, where=where), "task arguments")
    partition_count, selector, enabled_partitions = partitions or (1, None, None)
    definition = TaskDefinition(
        name="",
        celery_name="",
        schedule=schedule,
        dynamic=dynamic,
        execution_mode=execution_mode,
        failure_mode=failure_mode,
        lease_duration=lease_duration,
        enabled=enabled,
        catch_up=catch_up,
        args=args,
        partition_count=partition_count,
        partition_selector=selector,
        enabled_partitions=enabled_partitions,
        options={k: v for k, v in celery_options.items() if k in MESSAGE_OPTIONS},
        concurrency_limit=concurrency_limit,
        log_args=log_args,
        default_timing=default_timing,
        misfire_grace=misfire_grace,
        window=window,
        max_runs=max_runs,
    )
    return definition, celery_options, name
