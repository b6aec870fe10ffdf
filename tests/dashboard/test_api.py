"""The dashboard's JSON API and its guards (token, authorisation hook, read-only, CSRF, origin)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from celery_pyncette import _clock as clock
from celery_pyncette.dashboard import create_app
from tests.dashboard.conftest import Demo, make_demo

BASE = "http://testserver"


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=12)
    yield made
    made.pyncette.close()
    made.app.close()


def client(demo: Demo, **options: Any) -> TestClient:
    return TestClient(create_app(demo.pyncette, **options), base_url=BASE)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


# --- reading ------------------------------------------------------------------------------------


def test_api_lists_tasks_and_instances(demo: Demo) -> None:
    http = client(demo)

    tasks = {t["task"]: t for t in http.get("/api/tasks").json()}
    assert tasks["reminders.hello"]["instances"] == 13
    assert tasks["reports.daily"]["kind"] == "static"
    assert tasks["billing.invoice"]["partitions"] == 4

    one = http.get("/api/tasks/reminders.hello/instances/user-003").json()
    assert one["args"] == {"user_id": 3}
    assert one["interval"] == 900.0

    static = http.get("/api/tasks/reports.daily").json()
    assert static["state"]["schedule"] == "0 7 * * *"
    assert static["state"]["timezone"] == "Europe/Dublin"


def test_api_pages_return_every_instance_once(demo: Demo) -> None:
    http = client(demo)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "5"} if cursor is None else {"limit": "5", "cursor": cursor}
        page = http.get("/api/tasks/reminders.hello/instances", params=params).json()
        seen += [i["instance"] for i in page["instances"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(["team-ops", *(f"user-{i:03d}" for i in range(12))])
    assert len(seen) == len(set(seen))


def test_api_search_by_prefix_spans_partitions(demo: Demo) -> None:
    demo.pyncette.schedule_task("billing.invoice", "acme-uk", schedule="0 6 1 * *")
    http = client(demo)

    found = http.get("/api/tasks/billing.invoice/instances", params={"prefix": "acme"}).json()

    assert sorted(i["instance"] for i in found["instances"]) == ["acme", "acme-uk"]
    assert len({i["partition"] for i in found["instances"]}) == 2  # different partitions


def test_unknown_tasks_and_instances_are_404(demo: Demo) -> None:
    http = client(demo)

    assert http.get("/api/tasks/nope").status_code == 404
    assert http.get("/api/tasks/reminders.hello/instances/nobody").json() == {
        "error": "task 'reminders.hello' has no instance 'nobody'"
    }
    assert http.get("/tasks/nope").status_code == 404
    assert http.get("/api/tasks/reports.daily/instances").status_code == 404


def test_bad_query_values_are_400(demo: Demo) -> None:
    http = client(demo)

    response = http.get("/api/tasks/reminders.hello/instances", params={"cursor": "garbage"})
    assert response.status_code == 400
    assert http.get("/api/tasks/reminders.hello/instances?limit=0").status_code == 400


# --- read-only and CSRF -------------------------------------------------------------------------


def test_a_read_only_dashboard_has_no_forms_and_refuses_writes(demo: Demo) -> None:
    http = client(demo)

    page = http.get("/strikes").text
    response = http.post("/api/strikes", json={"task": "reminders.hello"})

    assert "add-strike" not in page
    assert response.status_code == 405
    assert demo.pyncette.strikes() == []


def test_form_posts_need_the_sessions_csrf_token(demo: Demo) -> None:
    http = client(demo, writable=True)
    token = csrf_of(http.get("/strikes").text)
    strike = {"task": "reminders.hello", "parameter": "", "operator": "==", "value": ""}

    refused = http.post("/strikes", data=strike, follow_redirects=False)
    forged = http.post("/strikes", data={**strike, "csrf_token": "0" * 64}, follow_redirects=False)
    other = client(demo, writable=True)
    other.get("/strikes")  # another browser, with its own session
    stolen = other.post("/strikes", data={**strike, "csrf_token": token}, follow_redirects=False)
    accepted = http.post("/strikes", data={**strike, "csrf_token": token}, follow_redirects=False)

    assert (refused.status_code, forged.status_code, stolen.status_code) == (403, 403, 403)
    assert accepted.status_code == 303
    assert [(s.task, s.parameter) for s in demo.pyncette.strikes()] == [("reminders.hello", None)]


@pytest.mark.parametrize(
    "headers",
    [{"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}],
)
def test_cross_site_posts_are_refused_even_with_a_token(
    demo: Demo, headers: dict[str, str]
) -> None:
    http = client(demo, writable=True)
    token = csrf_of(http.get("/strikes").text)

    response = http.post(
        "/strikes", data={"task": "reminders.hello", "csrf_token": token}, headers=headers
    )

    assert response.status_code == 403
    assert demo.pyncette.strikes() == []


def test_api_writes_take_the_csrf_header(demo: Demo) -> None:
    http = client(demo, writable=True)
    token = csrf_of(http.get("/strikes").text)

    without = http.post("/api/strikes", json={"parameter": "user_id", "operator": "==", "value": 1})
    added = http.post(
        "/api/strikes",
        json={"parameter": "user_id", "operator": "==", "value": 1},
        headers={"x-csrf-token": token},
    )
    restored = http.post(
        "/api/strikes/restore",
        json={"parameter": "user_id", "operator": "==", "value": 1},
        headers={"x-csrf-token": token},
    )

    assert without.status_code == 403
    assert added.status_code == 201
    assert added.json() == {
        "task": None,
        "parameter": "user_id",
        "operator": "==",
        "value": 1,
        "type": "integer",
        "reason": None,
    }
    assert restored.json() == {"removed": True}
    assert demo.pyncette.strikes() == []


# --- token and authorisation hook ---------------------------------------------------------------


def test_a_token_protects_every_page_and_the_api(demo: Demo) -> None:
    http = client(demo, token="s3cret")

    assert http.get("/api/tasks").status_code == 401
    page = http.get("/")
    assert page.status_code == 401
    assert 'name="token"' in page.text
    assert http.get("/api/tasks", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert http.get("/api/tasks", headers={"authorization": "Bearer s3cret"}).status_code == 200


def test_signing_in_sets_a_cookie_that_is_not_the_token(demo: Demo) -> None:
    http = client(demo, token="s3cret")

    wrong = http.post("/login", data={"token": "nope"}, follow_redirects=False)
    right = http.post("/login", data={"token": "s3cret"}, follow_redirects=False)

    assert wrong.status_code == 401
    assert right.status_code == 303
    assert "s3cret" not in right.headers["set-cookie"]
    assert http.get("/").status_code == 200


def test_bearer_writes_skip_csrf_and_schedule_instances(demo: Demo) -> None:
    http = client(demo, token="s3cret", writable=True)
    auth = {"authorization": "Bearer s3cret"}

    created = http.put(
        "/api/tasks/reminders.hello/instances/new-user",
        json={"cron": "0 8 * * *", "timezone": "Europe/Dublin", "args": {"user_id": 99}},
        headers=auth,
    )
    invalid = http.put(
        "/api/tasks/reminders.hello/instances/bad", json={"cron": "0 8 * *"}, headers=auth
    )
    removed = http.delete("/api/tasks/reminders.hello/instances/new-user", headers=auth)
    again = http.delete("/api/tasks/reminders.hello/instances/new-user", headers=auth)

    assert created.status_code == 200
    assert created.json()["schedule"] == "0 8 * * *"
    assert invalid.status_code == 400
    assert "invalid cron expression" in invalid.json()["error"]
    assert removed.json()["removed"] is True
    assert again.status_code == 404


def test_rescheduling_a_running_instance_needs_force(demo: Demo) -> None:
    store = demo.pyncette.store
    demo.pyncette.schedule_task(demo.hello, "busy", execute_at=clock.utcnow())
    (claimed,) = store.claim_due(
        "reminders.hello", 0, clock.utcnow() + timedelta(seconds=1), 10,
        timedelta(minutes=5), "test",
    )  # fmt: skip
    assert claimed.key.instance == "busy"
    http = client(demo, token="t", writable=True)
    auth = {"authorization": "Bearer t"}

    refused = http.put(
        "/api/tasks/reminders.hello/instances/busy", json={"interval": 60}, headers=auth
    )
    forced = http.put(
        "/api/tasks/reminders.hello/instances/busy",
        json={"interval": 60, "force": True},
        headers=auth,
    )

    assert refused.status_code == 409
    assert forced.status_code == 200


def test_the_authorisation_hook_sees_every_request(demo: Demo) -> None:
    seen: list[str] = []

    async def authorize(request: Request) -> bool:
        seen.append(request.url.path)
        return request.headers.get("x-user") == "admin"

    http = client(demo, authorize=authorize)

    assert http.get("/api/tasks").status_code == 403
    assert http.get("/beats").status_code == 403
    assert http.get("/api/tasks", headers={"x-user": "admin"}).status_code == 200
    assert http.get("/login").status_code == 403
    assert seen == ["/api/tasks", "/beats", "/api/tasks", "/login"]


def test_create_app_validates_its_options(demo: Demo) -> None:
    with pytest.raises(ValueError, match="token"):
        create_app(demo.pyncette, token="")
    with pytest.raises(ValueError, match="page_size"):
        create_app(demo.pyncette, page_size=0)
