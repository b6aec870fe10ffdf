"""The FastAPI example (examples/fastapi_app): the async API and the mounted dashboard."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def example() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYNCETTE_URL", "memory://")
        patch.setenv("CELERY_BROKER_URL", "memory://")
        patch.setenv("PYNCETTE_DASHBOARD_TOKEN", "t0ken")
        module = importlib.import_module("examples.fastapi_app.main")
        yield module


@pytest.fixture
def client(example: Any) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(example.app)


def test_follow_ups_are_scheduled_listed_and_cancelled_through_the_async_api(client: Any) -> None:
    created = client.put(
        "/orders/1/follow-up", json={"schedule": "0 10 * * 1", "timezone": "America/New_York"}
    )
    once = client.put("/orders/2/follow-up", json={"at": "2031-01-01T09:00:00Z"})
    listed = client.get("/follow-ups").json()
    cancelled = client.delete("/orders/1/follow-up")

    assert created.status_code == 201
    assert created.json()["schedule"] == "0 10 * * 1"
    assert once.json()["next_run"] == "2031-01-01T09:00:00Z"
    assert {f["instance"] for f in listed["follow_ups"]} >= {"order-1", "order-2"}
    assert cancelled.status_code == 204
    assert client.get("/orders/1/follow-up").status_code == 404


def test_invalid_timing_is_a_422(client: Any) -> None:
    response = client.put("/orders/3/follow-up", json={"schedule": "* * *"})

    assert response.status_code == 422
    assert "invalid cron expression" in response.json()["detail"]


def test_the_dashboard_is_mounted_with_its_token(client: Any) -> None:
    client.put("/orders/4/follow-up", json={"schedule": "0 9 * * *"})
    auth = {"authorization": "Bearer t0ken"}

    anonymous = client.get("/pyncette/api/tasks")
    tasks = client.get("/pyncette/api/tasks", headers=auth).json()
    page = client.get("/pyncette/tasks/fastapi_app.follow_up", headers=auth)
    one = client.get("/pyncette/api/tasks/fastapi_app.follow_up/instances/order-4", headers=auth)

    assert anonymous.status_code == 401
    assert [t["task"] for t in tasks] == ["fastapi_app.follow_up"]
    assert page.status_code == 200
    assert 'href="/pyncette/tasks/fastapi_app.follow_up/instances/order-4"' in page.text
    assert one.json()["args"] == {"order_id": 4}


def test_the_task_itself_is_an_async_function(example: Any) -> None:
    assert example.follow_up.apply(kwargs={"order_id": 9}).get() == "following up on order 9"
