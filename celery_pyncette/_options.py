"""The option names of the task API, and the check that keeps a misspelt option from silently
becoming a task argument.

Every keyword with a meaning somewhere in the task API is listed here once: the decorators'
(``task``, ``dynamic_task``, ``partitioned_task``), the instance calls' (``schedule_task``,
``schedule_tasks``, ``context.reschedule``) and Celery's own task options. A new option is added
to its set here, or calls would refuse it as a misspelling of another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery_pyncette._spelling import closest

#: Options of ``@pyncette.task`` that configure the Celery task rather than the schedule.
CELERY_TASK_OPTIONS = frozenset(
    {
        "base", "bind", "queue", "routing_key", "exchange", "priority", "expires", "time_limit",
        "soft_time_limit", "max_retries", "default_retry_delay", "autoretry_for", "retry_kwargs",
        "retry_backoff", "retry_backoff_max", "retry_jitter", "rate_limit", "ignore_result",
        "acks_late", "acks_on_failure_or_timeout", "reject_on_worker_lost", "track_started",
        "serializer", "compression", "shared", "throws", "store_errors_even_if_ignored",
        "trail", "send_events",
    }
)  # fmt: skip
#: The Celery options that travel with each message beat sends.
MESSAGE_OPTIONS = frozenset({"queue", "routing_key", "exchange", "priority", "expires"})

#: Keywords of the task decorators (``task``, ``dynamic_task``, ``partitioned_task``).
DECORATOR_OPTIONS = (
    frozenset(
        {
            "schedule", "interval", "timezone", "execution_mode", "failure_mode",
            "lease_duration", "enabled", "catch_up", "name", "concurrency_limit", "log_args",
            "args", "misfire_grace", "start_at", "end_at", "jitter", "max_runs",
        }
    )
    | CELERY_TASK_OPTIONS
)  # fmt: skip
#: The keywords only ``partitioned_task`` takes.
PARTITION_OPTIONS = frozenset({"partition_count", "partition_selector", "enabled_partitions"})
#: Keywords of ``schedule_task`` / ``schedule_tasks`` (``context.reschedule``: all but ``force``
#: and ``misfire_grace``, which a rescheduled instance keeps).
INSTANCE_OPTIONS = frozenset(
    {"schedule", "interval", "execute_at", "timezone", "force", "args", "misfire_grace",
     "start_at", "end_at", "jitter", "max_runs"}
)  # fmt: skip
#: Every keyword that has a meaning somewhere in the task API: an extra keyword named like one of
#: them, or close to one, is refused rather than taken for an argument.
OPTION_NAMES = DECORATOR_OPTIONS | PARTITION_OPTIONS | INSTANCE_OPTIONS
#: Similarity (difflib's ratio) from which an extra keyword counts as a misspelt option: one wrong
#: letter in a five-letter option (``forse``) and any near-miss of a longer one (``lease_duraton``,
#: ``excution_mode``). ``username`` or ``customer`` are not taken for ``name``; an argument that
#: is refused (``names``, ``rename``, ``scheduled``) goes in ``args={...}``.
TYPO_CUTOFF = 0.8


#: Pyncette's own options that have no counterpart here, and what to do instead. A ported task
#: would otherwise keep them as silent arguments and get another behaviour than it asked for.
PYNCETTE_ONLY_OPTIONS = {
    "fast_forward": (
        "missed runs are coalesced into one run by default here (catch_up=False), close to "
        "Pyncette's fast_forward=True; catch_up=True replays each one, as Pyncette does by default"
    ),
}


def _accepted_by(option: str) -> str:
    places = [
        where
        for where, names in (
            ("the task decorators", DECORATOR_OPTIONS),
            ("partitioned_task", PARTITION_OPTIONS),
            ("schedule_task", INSTANCE_OPTIONS),
        )
        if option in names
    ]
    return " and ".join(places)


def arguments_from(extra: Mapping[str, Any], args: Any, *, where: str) -> dict[str, Any]:
    """The task arguments of one call: its extra keywords and its ``args=`` mapping.

    An extra keyword named like an option that ``where`` does not take (``execute_at`` on a
    decorator, ``lease_duration`` on ``schedule_task``), or a close match of any option
    (``lease_duraton``), raises ``ValueError`` naming the option meant: a misspelt option would
    otherwise silently become an argument. ``args=`` carries arguments whose names look like
    options. A name given both ways is refused. The values are not checked here (see
    :func:`validate_args`). ``where`` names the call: ``@pyncette.task``,
    ``@pyncette.dynamic_task``, ``@pyncette.partitioned_task``, ``schedule_task``,
    ``schedule_tasks`` or ``context.reschedule``.
    """
    for key in extra:
        if key in PYNCETTE_ONLY_OPTIONS:
            raise ValueError(
                f"{where} got {key!r}, a Pyncette option with no counterpart here: "
                f"{PYNCETTE_ONLY_OPTIONS[key]}. An argument of that name goes in "
                f"args={{{key!r}: ...}}"
            )
        if key in OPTION_NAMES:
            raise ValueError(
                f"{key!r} is an option of {_accepted_by(key)}, not of {where}; an argument of "
                f"that name goes in args={{{key!r}: ...}}"
            )
        meant = closest(key, OPTION_NAMES, cutoff=TYPO_CUTOFF)
        if meant is not None:
            elsewhere = (
                "" if meant in _options_of(where) else f" (an option of {_accepted_by(meant)})"
            )
            raise ValueError(
                f"{where} got {key!r}: did you mean {meant!r}{elsewhere}? An argument of that "
                f"name goes in args={{{key!r}: ...}}"
            )
    if args is None:
        explicit: dict[str, Any] = {}
    elif isinstance(args, Mapping) and all(isinstance(k, str) for k in args):
        explicit = dict(args)
    else:
        raise ValueError(f"args must be a mapping of argument names to values, got {args!r}")
    twice = sorted(set(extra) & set(explicit))
    if twice:
        raise ValueError(
            f"argument(s) {', '.join(map(repr, twice))} given both as keywords and in args="
        )
    return {**extra, **explicit}


def _options_of(where: str) -> frozenset[str]:
    """The options the call named ``where`` takes (as :func:`arguments_from` names calls)."""
    if where == "@pyncette.partitioned_task":
        return DECORATOR_OPTIONS | PARTITION_OPTIONS
    if where.startswith("@pyncette."):
        return DECORATOR_OPTIONS
    if where == "context.reschedule":
        return INSTANCE_OPTIONS - {"force", "misfire_grace"}
    return INSTANCE_OPTIONS
