"""One read model: ``celery pyncette ... --json`` and the dashboard's API give the same JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner
from starlette.testclient import TestClient

from celery_pyncette import Context, Pyncette
from celery_pyncette import _registry as registry
from celery_pyncette.cli import pyncette as pyncette_group
from celery_pyncette.dashboard import create_app
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.conftest import FakeClock


@pytest.fixture
def stored(app: Celery, pyncette: Pyncette, fake_clock: FakeClock) -> Pyncette:
    """Every kind of record the read model shows: states of each timing, a lease and a last run,
    strikes of each kind, a live and a stale beat, quarantined records, a due backlog."""
    from celery_pyncette._dispatch import sync_static

    @pyncette.task(name="reports.daily", schedule="0 7 * * *", timezone="Europe/Dublin")
    def daily(context: Context) -> None: ...

    @pyncette.task(name="reports.weekly", schedule="0 7 * * 1")
    def weekly(context: Context) -> None: ...

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    sync_static(pyncette, pyncette.definitions(), fake_clock.now)
    pyncette.schedule_task(hello, "cron", schedule="0 9 * * 1-5", timezone="Europe/Dublin", n=1)
    pyncette.schedule_task(hello, "often", interval=timedelta(seconds=10), tags=["a", "b"])
    pyncette.schedule_task(hello, "ran", interval=timedelta(seconds=10))
    pyncette.schedule_task(hello, "once", execute_at=datetime(2030, 6, 1, 13, tzinfo=timezone.utc))
    pyncette.schedule_task(hello, "broken", interval=timedelta(minutes=5))
    fake_clock.advance(seconds=30)
    store, now = pyncette.store, fake_clock.now
    (first,) = store.claim_due("hello", 0, now, 1, timedelta(seconds=60), "t")
    store.commit(first.key, first.lease or "", now + timedelta(seconds=10), now, status="failure")
    assert store.claim_due("hello", 0, now, 1, timedelta(seconds=60), "running")
    assert store.quarantine(InstanceKey("hello", 0, "broken"), None, "<bad> spec", now)
    weekly_key = InstanceKey("reports.weekly", 0, STATIC_INSTANCE)
    assert store.quarantine(weekly_key, None, "not JSON", now + timedelta(microseconds=5))
    pyncette.strike(hello)
    pyncette.strike(hello, "n", "==", 1)
    pyncette.strike(None, "customer_id", "==", "12345")
    pyncette.strike(hello, "tags", "!=", ["a"])
    registry.record_beat(store, "dead", hostname="h", pid=1, started_at=now, partitions={}, now=now)
    fake_clock.advance(seconds=40, microseconds=250)
    registry.record_beat(
        store,
        "alive",
        hostname="web-1",
        pid=4242,
        started_at=now,
        partitions={"hello": [0], "reports.daily": [0]},
        now=fake_clock.now - timedelta(seconds=2),
    )
    return pyncette


def cli_json(app: Celery, *args: str) -> Any:
    result = CliRunner().invoke(pyncette_group, [*args, "--json"], obj=SimpleNamespace(app=app))
    return json.loads(result.stdout)


def api_json(pyncette: Pyncette, path: str) -> Any:
    response = TestClient(create_app(pyncette), base_url="http://testserver").get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_task_states_are_the_same_json(app: Celery, stored: Pyncette) -> None:
    listed = cli_json(app, "show", "hello")

    assert listed == api_json(stored, "/api/tasks/hello/instances?limit=500")["instances"]
    assert {row["instance"] for row in listed} == {"broken", "cron", "often", "once", "ran"}
    assert {row["last_status"] for row in listed} >= {"failure"}
    assert any(row["locked_by"] for row in listed)
    for name in ("cron", "often", "once"):
        assert cli_json(app, "show", "hello", name) == [
            api_json(stored, f"/api/tasks/hello/instances/{name}")
        ]
    assert cli_json(app, "show", "reports.daily") == [
        api_json(stored, "/api/tasks/reports.daily")["state"]
    ]
    assert cli_json(app, "list") == api_json(stored, "/api/tasks")


def test_strikes_are_the_same_json(app: Celery, stored: Pyncette) -> None:
    shown = cli_json(app, "strikes")

    assert shown == api_json(stored, "/api/strikes")
    assert len(shown) == 4
    assert {row["type"] for row in shown} == {None, "integer", "string", "list"}


def test_beats_and_health_are_the_same_json(app: Celery, stored: Pyncette) -> None:
    report = cli_json(app, "status")

    assert report.pop("forgotten") == []
    assert report == api_json(stored, "/api/beats?backlog=1")
    assert {beat["beat"]: beat["state"] for beat in report["beats"]} == {
        "alive": "alive",
        "dead": "stale",
    }
    assert report["quarantined"]["count"] == 2
    assert report["backlog"]


def test_quarantined_records_are_the_same_json(app: Celery, stored: Pyncette) -> None:
    listed = cli_json(app, "quarantined")

    assert listed == api_json(stored, "/api/quarantined")["quarantined"]
    assert {(row["task"], row["instance"]) for row in listed} == {
        ("hello", "broken"),
        ("reports.weekly", None),
    }


def test_times_are_iso_8601_utc_and_durations_seconds(app: Celery, stored: Pyncette) -> None:
    (often,) = cli_json(app, "show", "hello", "often")
    report = cli_json(app, "status")

    assert often["interval"] == 10.0
    assert often["scheduled_at"].endswith("+00:00")
    assert report["now"] == "2030-06-01T12:01:10.000250+00:00"
    assert {beat["beat"]: beat["age"] for beat in report["beats"]} == {
        "alive": 2.0,
        "dead": 40.00025,
    }
