"""The instance page's run history (issue #18), served through Starlette's test client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from celery_pyncette.dashboard import create_app
from tests.dashboard._history import settle_one
from tests.dashboard.conftest import Demo, make_demo


@pytest.fixture
def demo() -> Iterator[Demo]:
    made = make_demo("memory://", instances=5)
    yield made
    made.pyncette.close()
    made.app.close()


def history_rows(page: str) -> list[str]:
    body = page.split('<table id="history">', 1)[1].split("</table>", 1)[0]
    return body.split("<tbody>", 1)[1].split("<tr>")[1:]


def test_the_instance_page_lists_its_runs_newest_first(demo: Demo) -> None:
    settle_one(demo.pyncette, "user-002", "success", None)
    settle_one(demo.pyncette, "user-002", "failed", "KeyError: 'plan'")
    http = TestClient(create_app(demo.pyncette))

    page = http.get("/tasks/reminders.hello/instances/user-002").text

    rows = history_rows(page)
    assert len(rows) == 2
    assert "failed" in rows[0]
    assert "KeyError: &#39;plan&#39;" in rows[0]
    assert "worker-7" in rows[0]
    assert "success" in rows[1]
    assert "KeyError" not in rows[1]


def test_an_instance_without_runs_says_so(demo: Demo) -> None:
    http = TestClient(create_app(demo.pyncette))
    page = http.get("/tasks/reminders.hello/instances/user-001").text
    (row,) = history_rows(page)
    assert "No settled run kept" in row


def test_runs_left_are_shown_for_an_instance_with_max_runs(demo: Demo) -> None:
    demo.pyncette.schedule_task(demo.hello, "bounded", schedule="0 9 * * *", max_runs=4)
    http = TestClient(create_app(demo.pyncette))
    page = http.get("/tasks/reminders.hello/instances/bounded").text
    assert '<dd id="runs-left">4 of 4</dd>' in page
