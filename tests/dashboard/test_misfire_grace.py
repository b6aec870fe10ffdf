"""The dashboard's reschedule form keeps an instance's own misfire grace (as it keeps its
arguments); ``TaskState`` shows it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from celery_pyncette.dashboard import create_app
from tests.dashboard.conftest import Demo, make_demo


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=1)
    yield made
    made.pyncette.close()
    made.app.close()


def test_rescheduling_from_the_dashboard_keeps_the_instances_grace(demo: Demo) -> None:
    http = TestClient(create_app(demo.pyncette, writable=True), base_url="http://testserver")
    demo.pyncette.schedule_task(
        demo.hello, "strict", interval=timedelta(minutes=5), misfire_grace=timedelta(seconds=45)
    )
    before = demo.pyncette.get_task_state(demo.hello, "strict")
    assert before is not None
    assert before.misfire_grace == timedelta(seconds=45)
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/strikes").text)
    assert token

    response = http.post(
        "/tasks/reminders.hello/instances/strict/reschedule",
        data={"interval": "120", "csrf_token": token.group(1)},
        follow_redirects=False,
    )

    assert response.status_code in (302, 303), response.text
    after = demo.pyncette.get_task_state(demo.hello, "strict")
    assert after is not None
    assert after.interval == timedelta(seconds=120)
    assert after.misfire_grace == timedelta(seconds=45)
    plain = demo.pyncette.get_task_state(demo.hello, "user-000")
    assert plain is not None
    assert plain.misfire_grace is None
