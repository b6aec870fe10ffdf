"""Strike reasons on the dashboard: the strikes page shows them (escaped), the strike form and the
API take one, and a malformed one is refused with nothing written."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from celery_pyncette.dashboard import create_app
from celery_pyncette.stores.base import Strike
from tests.dashboard.conftest import Demo, make_demo

BASE = "http://testserver"


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=3)
    yield made
    made.pyncette.close()
    made.app.close()


def client(demo: Demo, writable: bool = True) -> TestClient:
    return TestClient(create_app(demo.pyncette, writable=writable), base_url=BASE)


def token_of(http: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/strikes").text)
    assert found
    return found.group(1)


def reason_cells(page: str) -> list[str]:
    return re.findall(r'<td class="reason">(.*?)</td>', page)


def test_the_strikes_page_shows_each_reason_escaped_even_read_only(demo: Demo) -> None:
    demo.pyncette.strike("reminders.hello", reason="incident <4711> & co")
    demo.pyncette.strike(None, "user_id", "==", 3)

    page = client(demo, writable=False).get("/strikes").text

    assert "<th>Reason</th>" in page
    assert sorted(reason_cells(page)) == ["", "incident &lt;4711&gt; &amp; co"]
    assert "add-strike" not in page


def test_the_strike_form_takes_a_reason_and_a_blank_one_is_none(demo: Demo) -> None:
    http = client(demo)
    token = token_of(http)
    assert 'name="reason"' in http.get("/strikes").text

    for task, reason in (("reminders.hello", "incident 4711"), ("reports.daily", "   ")):
        response = http.post("/strikes", data={"task": task, "reason": reason, "csrf_token": token})
        assert response.status_code == 200
        assert "strike added" in response.text

    assert sorted(demo.pyncette.strikes(), key=repr) == sorted(
        [Strike("reminders.hello", reason="incident 4711"), Strike("reports.daily")], key=repr
    )
    assert "incident 4711" in reason_cells(http.get("/strikes").text)


def test_the_strike_form_refuses_a_reason_that_is_too_long(demo: Demo) -> None:
    http = client(demo)
    token = token_of(http)

    response = http.post(
        "/strikes", data={"task": "reminders.hello", "reason": "x" * 501, "csrf_token": token}
    )

    assert "at most 500 characters" in response.text
    assert demo.pyncette.strikes() == []


def test_the_api_takes_a_reason_and_lists_it(demo: Demo) -> None:
    http = client(demo)
    headers = {"x-csrf-token": token_of(http)}

    added = http.post(
        "/api/strikes",
        json={"parameter": "user_id", "operator": ">=", "value": 2, "reason": "bad batch"},
        headers=headers,
    )
    refused = http.post(
        "/api/strikes", json={"task": "reminders.hello", "reason": 4711}, headers=headers
    )

    assert added.status_code == 201
    assert added.json()["reason"] == "bad batch"
    assert refused.status_code == 400
    assert "must be a string" in refused.json()["error"]
    assert [row["reason"] for row in http.get("/api/strikes").json()] == ["bad batch"]
    assert demo.pyncette.strikes() == [Strike(None, "user_id", ">=", 2, reason="bad batch")]
