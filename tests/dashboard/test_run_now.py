"""The dashboard's run now button: on an instance page (and a static task's page) when writable,
CSRF-protected, through the authorisation hook; one extra occurrence, the next run kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from celery_pyncette import _clock as clock
from celery_pyncette._records import extra_target, is_extra_instance
from celery_pyncette.dashboard import create_app
from tests.dashboard.conftest import Demo, make_demo
from tests.dashboard.test_api import csrf_of

BASE = "http://testserver"
PAGE = "/tasks/reminders.hello/instances/team-ops"


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=3)
    yield made
    made.pyncette.close()
    made.app.close()


def client(demo: Demo, **options: Any) -> TestClient:
    return TestClient(create_app(demo.pyncette, **options), base_url=BASE)


def extras(demo: Demo, task: str = "reminders.hello") -> list[tuple[str | None, datetime]]:
    store = demo.pyncette.store
    definition = demo.pyncette.definition(task)
    return [
        (extra_target(r), r.next_run)
        for p in range(definition.partition_count)
        for r in store.list_instances(task, p, 1000)
        if is_extra_instance(r.key.instance)
    ]


def test_a_read_only_dashboard_has_no_run_button_and_refuses_the_post(demo: Demo) -> None:
    http = client(demo)

    page = http.get(PAGE).text
    response = http.post(PAGE + "/run", data={}, follow_redirects=False)

    assert 'id="run-now"' not in page
    assert response.status_code == 405
    assert extras(demo) == []


def test_run_now_from_the_instance_page(demo: Demo) -> None:
    http = client(demo, writable=True)
    before = demo.pyncette.get_task_state("reminders.hello", "team-ops")
    page = http.get(PAGE).text
    assert 'id="run-now"' in page
    token = csrf_of(page)

    refused = http.post(PAGE + "/run", data={}, follow_redirects=False)
    forged = http.post(PAGE + "/run", data={"csrf_token": "0" * 64}, follow_redirects=False)
    assert (refused.status_code, forged.status_code) == (403, 403)
    assert extras(demo) == []

    sent = http.post(PAGE + "/run", data={"csrf_token": token}, follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"].endswith(PAGE)
    assert "run now sent for" in http.get(sent.headers["location"]).text
    ((target, at),) = extras(demo)
    assert target == "team-ops"
    assert abs(at - clock.utcnow()) < timedelta(minutes=1)
    after = demo.pyncette.get_task_state("reminders.hello", "team-ops")
    assert before is not None
    assert after is not None
    assert after.scheduled_at == before.scheduled_at
    listing = http.get("/api/tasks/reminders.hello/instances").json()
    assert not any(is_extra_instance(row["instance"]) for row in listing["instances"])
    assert "__pyncette" not in http.get("/tasks/reminders.hello").text


def test_a_running_instance_needs_the_force_box(demo: Demo) -> None:
    store = demo.pyncette.store
    demo.pyncette.schedule_task(demo.hello, "busy", execute_at=clock.utcnow())
    (claimed,) = store.claim_due(
        "reminders.hello", 0, clock.utcnow() + timedelta(seconds=1), 10,
        timedelta(minutes=5), "test",
    )  # fmt: skip
    assert claimed.key.instance == "busy"
    http = client(demo, writable=True)
    page = "/tasks/reminders.hello/instances/busy"
    token = csrf_of(http.get(page).text)

    locked = http.post(page + "/run", data={"csrf_token": token})
    assert "is running" in locked.text
    assert "run even while running" in locked.text
    assert extras(demo) == []

    forced = http.post(page + "/run", data={"csrf_token": token, "force": "1"})
    assert forced.status_code == 200
    assert [target for target, _ in extras(demo)] == ["busy"]


def test_run_now_of_a_static_task_from_its_page(demo: Demo) -> None:
    http = client(demo, writable=True)
    page = http.get("/tasks/reports.daily").text
    assert 'id="run-now"' in page

    sent = http.post(
        "/tasks/reports.daily/run", data={"csrf_token": csrf_of(page)}, follow_redirects=False
    )

    assert sent.status_code == 303
    assert [target for target, _ in extras(demo, "reports.daily")] == [None]


def test_run_now_of_a_partitioned_instance(demo: Demo) -> None:
    http = client(demo, writable=True)
    page = "/tasks/billing.invoice/instances/globex"
    token = csrf_of(http.get(page).text)

    sent = http.post(page + "/run", data={"csrf_token": token}, follow_redirects=False)

    assert sent.status_code == 303
    assert [target for target, _ in extras(demo, "billing.invoice")] == ["globex"]


def test_the_authorisation_hook_decides_on_run_now(demo: Demo) -> None:
    seen: list[tuple[str, str]] = []

    def authorize(request: Request) -> bool:
        seen.append((request.method, request.url.path))
        return request.method == "GET"  # may look, may not run

    http = client(demo, writable=True, authorize=authorize)
    token = csrf_of(http.get(PAGE).text)
    refused = http.post(PAGE + "/run", data={"csrf_token": token}, follow_redirects=False)

    assert refused.status_code == 403
    assert ("POST", PAGE + "/run") in seen
    assert extras(demo) == []


# --- the JSON API ----------------------------------------------------------------------------


def test_the_api_runs_now_and_answers_409_while_running(demo: Demo) -> None:
    http = client(demo, token="t", writable=True)
    auth = {"authorization": "Bearer t"}
    api = "/api/tasks/reminders.hello/instances/busy/run"
    demo.pyncette.schedule_task(demo.hello, "busy", execute_at=clock.utcnow())
    demo.pyncette.store.claim_due(
        "reminders.hello", 0, clock.utcnow() + timedelta(seconds=1), 10,
        timedelta(minutes=5), "test",
    )  # fmt: skip

    locked = http.post(api, headers=auth)
    forced = http.post(api, json={"force": True}, headers=auth)
    static = http.post("/api/tasks/reports.daily/run", headers=auth)
    unknown = http.post("/api/tasks/reminders.hello/instances/nobody/run", headers=auth)
    read_only = client(demo, token="t").post(api, json={"force": True}, headers=auth)

    assert locked.status_code == 409
    assert "is running" in locked.json()["error"]
    assert forced.status_code == 201
    assert forced.json()["instance"] == "busy"
    assert static.status_code == 201
    assert static.json()["instance"] is None
    assert unknown.status_code == 400
    assert read_only.status_code == 405
    assert [t for t, _ in extras(demo)] == ["busy"]
    assert [t for t, _ in extras(demo, "reports.daily")] == [None]


def test_the_api_backfills_a_window_once(demo: Demo) -> None:
    http = client(demo, token="t", writable=True)
    auth = {"authorization": "Bearer t"}
    api = "/api/tasks/billing.invoice/instances/acme/backfill"  # "0 6 1 * *": monthly
    now = clock.utcnow()
    window = {"from": (now - timedelta(days=100)).isoformat(), "to": now.isoformat()}

    first = http.post(api, json=window, headers=auth)
    again = http.post(api, json=window, headers=auth)
    too_many = http.post(api, json={**window, "max": 1}, headers=auth)
    naive = http.post(api, json={**window, "from": "2020-01-01T00:00:00"}, headers=auth)
    missing = http.post(api, json={"to": window["to"]}, headers=auth)

    assert first.status_code == 201
    rows = first.json()["written"]
    assert 3 <= len(rows) <= 4
    assert all(datetime.fromisoformat(r["scheduled_at"]).day == 1 for r in rows)
    assert again.json() == {"written": []}
    assert (too_many.status_code, naive.status_code, missing.status_code) == (400, 400, 400)
    assert "has no UTC offset" in naive.json()["error"]
    assert sorted(at for _, at in extras(demo, "billing.invoice")) == sorted(
        datetime.fromisoformat(r["scheduled_at"]) for r in rows
    )
