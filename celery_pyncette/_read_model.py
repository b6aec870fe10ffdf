"""The one read model: what ``celery pyncette ... --json`` prints and the dashboard's API answers.

Each ``*_row`` function turns one thing the library reads (a task summary, a task state, a run of
its history, a strike, a beat, a task's backlog, the health report, a quarantined record) into a
dict with one fixed set of keys. Values are JSON values, except times (``datetime``) and
durations (``timedelta``), kept as they are so that the CLI's tables and the dashboard's pages
format them for people; :func:`to_json` makes any such row (or a list or dict of them) JSON:
times as ISO 8601 in UTC, durations as seconds. The CLI and the dashboard serialise through here
only, so the same store content gives the same JSON from both
(``tests/dashboard/test_same_json.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette._overview import Backlog, Health, TaskSummary
from celery_pyncette._registry import BeatInfo
from celery_pyncette._state import TaskState
from celery_pyncette._strike_values import type_name
from celery_pyncette.stores.base import STATIC_INSTANCE, Quarantined, Run, Strike

#: Quarantined records listed in a health report (the count says how many there are).
HEALTH_QUARANTINED_SHOWN = 10


def to_json(value: Any) -> Any:
    """``value`` with every time as ISO 8601 in UTC and every duration in seconds, recursively.

    A naive time is taken as UTC. Other values are returned as they are.
    """
    if isinstance(value, datetime):
        zoned = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
        return zoned.astimezone(timezone.utc).isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def task_row(summary: TaskSummary) -> dict[str, Any]:
    """A declared task (or ``beat_schedule`` entry): kind, schedule, modes, instance count."""
    return {
        "task": summary.name,
        "celery_task": summary.celery_name,
        "kind": summary.kind,
        "source": summary.source,
        "schedule": summary.schedule,
        "execution_mode": summary.execution_mode,
        "failure_mode": summary.failure_mode,
        "partitions": summary.partition_count,
        "enabled": summary.enabled,
        "instances": summary.instances,
        "next_run": summary.next_run,
    }


def state_row(state: TaskState) -> dict[str, Any]:
    """A stored instance: its timing (one of ``schedule``, ``interval``, ``execute_at``), next run
    (``scheduled_at``), lease, last run and arguments; ``instance`` is ``None`` when static. Then
    its bounds (``start_at``, ``end_at``), ``jitter``, and when beat sends the next run
    (``sends_at``: ``scheduled_at`` plus its offset under jitter)."""
    return {
        "task": state.task,
        "instance": state.instance,
        "partition": state.partition,
        "schedule": state.schedule,
        "interval": state.interval,
        "execute_at": state.execute_at,
        "timezone": state.timezone,
        "scheduled_at": state.scheduled_at,
        "locked_until": state.locked_until,
        "locked_by": state.locked_by,
        "last_run_at": state.last_run_at,
        "last_status": state.last_status,
        "max_runs": state.max_runs,
        "runs_left": state.runs_left,
        "args": dict(state.args),
        "start_at": state.start_at,
        "end_at": state.end_at,
        "jitter": state.jitter,
        "sends_at": state.sends_at,
    }


def run_row(run: Run) -> dict[str, Any]:
    """One settled run of an instance's history (see ``Pyncette.history``)."""
    return {
        "scheduled_at": run.scheduled_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "worker": run.worker,
        "error": run.error,
    }


def strike_row(strike: Strike) -> dict[str, Any]:
    """A strike, its value as stored with the value's ``type`` (``None`` for a whole task), and
    its ``reason`` (``None`` when it has none)."""
    return {
        "task": strike.task,
        "parameter": strike.parameter,
        "operator": strike.operator,
        "value": strike.value,
        "type": type_name(strike.value) if strike.parameter is not None else None,
        "reason": strike.reason,
    }


def sorted_strikes(strikes: Iterable[Strike]) -> list[Strike]:
    """``strikes`` in the one order every listing shows them (by their rows' JSON, the reason
    left out: it is a note, not part of the rule)."""

    def rule(strike: Strike) -> str:
        row = strike_row(strike)
        del row["reason"]
        return json.dumps(row, sort_keys=True)

    return sorted(strikes, key=rule)


def beat_row(beat: BeatInfo, now: datetime) -> dict[str, Any]:
    """A beat as it last reported itself, how long ago (``age``) and whether it is stale."""
    return {
        "beat": beat.owner,
        "hostname": beat.hostname,
        "pid": beat.pid,
        "started_at": beat.started_at,
        "last_tick": beat.last_tick,
        "age": now - beat.last_tick,
        "state": "stale" if beat.is_stale(now) else "alive",
        "partitions": {task: list(parts) for task, parts in beat.partitions.items()},
    }


def backlog_row(backlog: Backlog, now: datetime) -> dict[str, Any]:
    """What one task has waiting at ``now``, and how late its oldest due instance is."""
    return {
        "task": backlog.task,
        "due": backlog.due,
        "running": backlog.running,
        "oldest_due": backlog.oldest_due,
        "overdue": backlog.overdue(now),
    }


def quarantined_row(item: Quarantined) -> dict[str, Any]:
    """A quarantined record and why; ``instance`` is ``None`` for a static task's record."""
    return {
        "task": item.key.task,
        "partition": item.key.partition,
        "instance": None if item.key.instance == STATIC_INSTANCE else item.key.instance,
        "reason": item.reason,
        "since": item.since,
    }


def health_row(health: Health) -> dict[str, Any]:
    """The health report: beats, backlog (``None`` when not counted), problems, warnings, and the
    quarantined records (``count`` up to the counting limit, ``more`` beyond it, the ``first``
    :data:`HEALTH_QUARANTINED_SHOWN`)."""
    return {
        "healthy": health.healthy,
        "now": health.now,
        "beats": [beat_row(beat, health.now) for beat in health.beats],
        "backlog": None
        if health.backlog is None
        else [backlog_row(b, health.now) for b in health.backlog],
        "problems": list(health.problems),
        "warnings": list(health.warnings),
        "quarantined": {
            "count": len(health.quarantined),
            "more": health.quarantined_more,
            "first": [quarantined_row(q) for q in health.quarantined[:HEALTH_QUARANTINED_SHOWN]],
        },
    }
