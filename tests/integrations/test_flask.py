"""The Flask example (examples/flask_app): an app factory, schedules from routes, app context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("flask")

from examples.flask_app import REMIND, create_app


@pytest.fixture
def app() -> Iterator[Any]:
    flask_app = create_app(
        {"GREETING": "Ahoy", "CELERY": {"broker_url": "memory://", "pyncette_url": "memory://"}}
    )
    yield flask_app
    flask_app.extensions["pyncette"].close()
    flask_app.extensions["celery"].close()


def test_a_route_schedules_shows_and_removes_a_users_reminder(app: Any) -> None:
    client = app.test_client()

    created = client.post(
        "/users/42/reminder", json={"schedule": "30 8 * * *", "timezone": "Europe/Dublin"}
    )
    shown = client.get("/users/42/reminder")
    removed = client.delete("/users/42/reminder")
    gone = client.get("/users/42/reminder")

    assert created.status_code == 201
    assert created.json["instance"] == "user-42"
    assert shown.json["schedule"] == "30 8 * * *"
    assert shown.json["timezone"] == "Europe/Dublin"
    assert shown.json["next_run"] == created.json["next_run"]
    assert removed.status_code == 204
    assert gone.status_code == 404
    assert app.extensions["pyncette"].get_task_state(REMIND, "user-42") is None


def test_an_interval_reminder_and_invalid_input(app: Any) -> None:
    client = app.test_client()

    every = client.post("/users/7/reminder", json={"every": 3600})
    bad_cron = client.post("/users/8/reminder", json={"schedule": "every day"})
    nothing = client.post("/users/9/reminder", json={})

    assert every.status_code == 201
    state = app.extensions["pyncette"].get_task_state(REMIND, "user-7")
    assert state.interval.total_seconds() == 3600
    assert bad_cron.status_code == 400
    assert "invalid cron expression" in bad_cron.json["error"]
    assert nothing.status_code == 400


def test_the_task_runs_inside_the_flask_app_context(app: Any) -> None:
    remind = app.extensions["celery"].tasks[REMIND]

    assert remind.apply(kwargs={"user_id": 5}).get() == "Ahoy, user 5"


def test_each_factory_call_has_its_own_schedules(app: Any) -> None:
    other = create_app({"CELERY": {"broker_url": "memory://", "pyncette_url": "memory://"}})
    try:
        app.test_client().post("/users/1/reminder", json={"every": 60})

        assert other.test_client().get("/users/1/reminder").status_code == 404
    finally:
        other.extensions["pyncette"].close()
        other.extensions["celery"].close()
