"""The dashboard door: reserved names refused naming the rule; strike values typed as the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from celery_pyncette.dashboard import create_app
from celery_pyncette.stores.base import Strike
from tests.dashboard.conftest import Demo, make_demo


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=3)
    yield made
    made.pyncette.close()
    made.app.close()


@pytest.fixture
def http(demo: Demo) -> TestClient:
    return TestClient(create_app(demo.pyncette, writable=True), base_url="http://testserver")


def token_of(http: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/strikes").text)
    assert found
    return found.group(1)


def test_scheduling_the_static_instance_name_is_refused_naming_the_rule(
    demo: Demo, http: TestClient
) -> None:
    response = http.put(
        "/api/tasks/reminders.hello/instances/__static__",
        json={"interval": 60},
        headers={"x-csrf-token": token_of(http)},
    )

    assert response.status_code == 400
    assert "'__static__' is reserved" in response.json()["error"]
    assert demo.pyncette.get_task_state(demo.hello, "user-000") is not None


def test_arguments_named_like_options_are_arguments(demo: Demo, http: TestClient) -> None:
    # The API hands its "args" object to schedule_task(args=...): any name is an argument.
    args = {"force": True, "name": "Ann", "lease_duraton": 5}
    response = http.put(
        "/api/tasks/reminders.hello/instances/ann",
        json={"interval": 60, "args": args},
        headers={"x-csrf-token": token_of(http)},
    )

    assert response.status_code == 200, response.text
    state = demo.pyncette.get_task_state(demo.hello, "ann")
    assert state is not None
    assert {k: state.args[k] for k in args} == args


def test_a_reserved_task_name_is_refused_naming_the_rule(http: TestClient) -> None:
    response = http.get("/api/tasks/__pyncette_beats__/instances")

    assert response.status_code == 400
    assert "is reserved" in response.json()["error"]


def test_the_strike_form_reads_12345_as_the_string_and_shows_its_type(
    demo: Demo, http: TestClient
) -> None:
    token = token_of(http)
    for value in ("12345", "int:12345"):
        http.post(
            "/strikes",
            data={
                "task": "",
                "parameter": "customer_id",
                "operator": "==",
                "value": value,
                "csrf_token": token,
            },
        )

    page = http.get("/strikes").text
    listed = http.get("/api/strikes").json()

    assert sorted(demo.pyncette.strikes(), key=str) == sorted(
        [Strike(None, "customer_id", "==", "12345"), Strike(None, "customer_id", "==", 12345)],
        key=str,
    )
    assert "customer_id == &#34;12345&#34; (string)" in page
    assert "customer_id == 12345 (integer)" in page
    assert sorted(s["type"] for s in listed) == ["integer", "string"]
    # each Restore form carries the value in the typed text form, so it removes that strike only
    assert 'name="value" value="int:12345"' in page
    assert 'name="value" value="12345"' in page
    http.post(
        "/strikes/restore",
        data={
            "task": "",
            "parameter": "customer_id",
            "operator": "==",
            "value": "int:12345",
            "csrf_token": token,
        },
    )
    assert demo.pyncette.strikes() == [Strike(None, "customer_id", "==", "12345")]
