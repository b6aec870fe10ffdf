"""``celery pyncette history`` and ``schedule --max-runs`` (issue #18), through click's runner."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from celery import Celery

from celery_pyncette import Context, Pyncette, Run
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from tests.unit.test_cli import invoke

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def settle(pyncette: Pyncette, task: str, at: datetime, status: str, error: str | None) -> None:
    """Claim the due instance of ``task`` and commit it with a history entry."""
    (got,) = pyncette.store.claim_due(task, 0, at, 10, timedelta(seconds=30), "b1")
    entry = Run(at, at, at + timedelta(seconds=1), status, "worker-1", error)
    pyncette.store.commit(
        got.key, got.lease, at + timedelta(minutes=1), at, run=entry, history_size=20
    )


def test_history_prints_runs_newest_first_as_json_and_as_a_table(
    app: Celery, pyncette: Pyncette
) -> None:
    @pyncette.dynamic_task(name="hist")
    def hist(context: Context) -> None: ...

    pyncette.store.upsert(InstanceRecord(InstanceKey("hist", 0, "a"), T0, {"kind": "once"}), T0)
    settle(pyncette, "hist", T0, "success", None)
    settle(pyncette, "hist", T0 + timedelta(minutes=1), "failed", "ValueError: no")

    code, output = invoke(app, "history", "hist", "a", "--json")
    assert code == 0, output
    rows = json.loads(output)
    assert [row["status"] for row in rows] == ["failed", "success"]
    assert rows[0] == {
        "scheduled_at": "2030-01-01T00:01:00+00:00",
        "started_at": "2030-01-01T00:01:00+00:00",
        "finished_at": "2030-01-01T00:01:01+00:00",
        "status": "failed",
        "worker": "worker-1",
        "error": "ValueError: no",
    }

    code, table = invoke(app, "history", "hist", "a", "--limit", "1")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == [
        "SCHEDULED_AT", "STARTED_AT", "FINISHED_AT", "STATUS", "WORKER", "ERROR"
    ]  # fmt: skip
    assert len(lines) == 2
    assert "failed" in lines[1]
    assert "ValueError: no" in lines[1]


def test_history_of_an_unknown_task_fails_in_one_line(app: Celery, pyncette: Pyncette) -> None:
    code, output = invoke(app, "history", "nope")
    assert code == 1
    assert "nope" in output


def test_schedule_takes_max_runs_and_shows_the_runs_left(app: Celery, pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="bounded")
    def bounded(context: Context) -> None: ...

    code, output = invoke(
        app, "schedule", "bounded", "a", "--interval", "60", "--max-runs", "3", "--json"
    )
    assert code == 0, output
    (row,) = json.loads(output)
    assert (row["max_runs"], row["runs_left"]) == (3, 3)

    code, output = invoke(app, "schedule", "bounded", "b", "--interval", "60", "--max-runs", "0")
    assert code == 1
    assert "max_runs" in output
    assert pyncette.get_task_state(bounded, "b") is None
