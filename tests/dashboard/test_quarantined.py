"""The dashboard's Quarantined page and ``GET /api/quarantined``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from celery_pyncette import _clock as clock
from celery_pyncette.dashboard import create_app
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.dashboard.conftest import Demo, make_demo


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=3)
    store, now = made.pyncette.store, clock.utcnow()
    assert store.quarantine(InstanceKey("reminders.hello", 0, "user-001"), None, "<bad> spec", now)
    later = now + timedelta(seconds=1)
    assert store.quarantine(
        InstanceKey("reports.daily", 0, STATIC_INSTANCE), None, "not JSON", later
    )
    yield made
    made.pyncette.close()
    made.app.close()


def test_the_api_lists_quarantined_records_with_their_reasons(demo: Demo) -> None:
    http = TestClient(create_app(demo.pyncette), base_url="http://testserver")

    body = http.get("/api/quarantined").json()

    assert body["more"] is False
    rows = {(r["task"], r["instance"]): r for r in body["quarantined"]}
    assert set(rows) == {("reminders.hello", "user-001"), ("reports.daily", None)}
    assert rows[("reports.daily", None)]["reason"] == "not JSON"
    assert rows[("reminders.hello", "user-001")]["since"].startswith(str(clock.utcnow().year))

    only = http.get("/api/quarantined", params={"task": "reports.daily", "limit": "5"}).json()
    assert [r["task"] for r in only["quarantined"]] == ["reports.daily"]
    one = http.get("/api/quarantined", params={"limit": "1"}).json()
    assert len(one["quarantined"]) == 1
    assert one["more"] is True
    assert http.get("/api/quarantined", params={"limit": "0"}).status_code == 400


def test_the_page_shows_each_record_and_links_its_instance(demo: Demo) -> None:
    http = TestClient(create_app(demo.pyncette), base_url="http://testserver")

    page = http.get("/quarantined")

    assert page.status_code == 200
    assert 'href="/quarantined" class="active">Quarantined' in page.text
    assert "/tasks/reminders.hello/instances/user-001" in page.text
    assert "&lt;bad&gt; spec" in page.text, "reasons are escaped"
    assert ">static<" in page.text
    demo.pyncette.schedule_task(demo.hello, "user-001", interval=timedelta(minutes=15))
    demo.pyncette.store.delete(InstanceKey("reports.daily", 0, STATIC_INSTANCE))
    assert "No record is quarantined." in http.get("/quarantined").text


def test_a_token_protects_the_quarantine_view(demo: Demo) -> None:
    http = TestClient(create_app(demo.pyncette, token="s3cret"), base_url="http://testserver")

    assert http.get("/api/quarantined").status_code == 401
    authorised = {"Authorization": "Bearer s3cret"}
    assert http.get("/api/quarantined", headers=authorised).status_code == 200
