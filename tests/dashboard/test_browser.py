"""The dashboard end to end in headless Chromium: uvicorn serving a SQLite-backed app.

Each page is loaded and screenshotted into ``test-artifacts/screenshots/``; a strike is added (with
a reason, shown in the list) and restored through the forms; an instance is rescheduled and its
next run seen to change; run now is pressed on an instance's page and a static task's, and the
next run seen to stay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from celery_pyncette import _clock as clock
from celery_pyncette._records import extra_target, is_extra_instance
from tests.dashboard._history import settle_one
from tests.dashboard.conftest import Served

WAIT = 10


def wait_for(browser: Any, css: str) -> Any:
    return WebDriverWait(browser, WAIT).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def texts(browser: Any, css: str) -> list[str]:
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, css)]


def test_every_page_loads_and_is_screenshotted(
    browser: Any, served: Served, screenshot: Callable[[str], Path]
) -> None:
    base = served.base_url
    pages = [
        ("/", "#tasks", "tasks", "reminders.hello"),
        ("/tasks/reminders.hello", "#instances", "instances", "user-000"),
        ("/tasks/reports.daily", "#next-run", "static-task", "Next run"),
        ("/tasks/billing.invoice", "#instances", "partitioned-task", "partition"),
        ("/tasks/reminders.hello/instances/team-ops", "#next-run", "instance", "0 9 * * 1-5"),
        ("/strikes", "#strikes", "strikes", "No strikes"),
        ("/beats", "#beats", "beats", "web-1:4242:ab12cd34"),
        ("/beats?backlog=1", "#backlog", "beats-backlog", "reminders.hello"),
        ("/quarantined", "#quarantined", "quarantined", "No record is quarantined."),
    ]
    for path, marker, name, expected in pages:
        browser.get(base + path)
        wait_for(browser, marker)
        assert expected in browser.find_element(By.TAG_NAME, "main").text, path
        assert screenshot(name).stat().st_size > 10_000


def test_instances_are_searchable_and_paginated(browser: Any, served: Served) -> None:
    browser.get(served.base_url + "/tasks/reminders.hello")
    wait_for(browser, "#instances")
    first_page = texts(browser, "#instances tbody td:first-child a")
    assert first_page[0] == "team-ops"
    assert len(first_page) == 31  # 30 users + team-ops fit the default page of 50

    browser.get(served.base_url + "/tasks/reminders.hello?limit=10")
    assert len(texts(browser, "#instances tbody td:first-child a")) == 10
    browser.find_element(By.ID, "next-page").click()
    WebDriverWait(browser, WAIT).until(lambda b: "cursor=" in b.current_url)
    second = texts(browser, "#instances tbody td:first-child a")
    assert second[0] == "user-009"  # page 1: team-ops, user-000..user-008

    search = wait_for(browser, "#search")
    search.clear()
    search.send_keys("user-02")
    search.submit()
    WebDriverWait(browser, WAIT).until(lambda b: "prefix=user-02" in b.current_url)
    assert texts(browser, "#instances tbody td:first-child a") == [f"user-02{i}" for i in range(10)]


def test_a_strike_is_added_and_restored_through_the_forms(
    browser: Any, served: Served, screenshot: Callable[[str], Path]
) -> None:
    pyncette = served.demo.pyncette
    browser.get(served.base_url + "/strikes")
    form = wait_for(browser, "#add-strike")
    Select(form.find_element(By.NAME, "task")).select_by_visible_text("reminders.hello")
    form.find_element(By.NAME, "parameter").send_keys("user_id")
    Select(form.find_element(By.NAME, "operator")).select_by_visible_text("<=")
    form.find_element(By.NAME, "value").send_keys("int:3")
    form.find_element(By.NAME, "reason").send_keys("incident 4711")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(browser, WAIT).until(lambda b: "strike added" in b.page_source)
    assert texts(browser, "#strikes tbody td:nth-child(2)") == ["user_id <= 3 (integer)"]
    assert texts(browser, "#strikes tbody td.reason") == ["incident 4711"]
    assert [(s.task, s.parameter, s.operator, s.value, s.reason) for s in pyncette.strikes()] == [
        ("reminders.hello", "user_id", "<=", 3, "incident 4711")
    ]
    screenshot("strikes-added")

    browser.find_element(By.CSS_SELECTOR, "#strikes button.restore").click()

    WebDriverWait(browser, WAIT).until(lambda b: "strike restored" in b.page_source)
    assert "No strikes" in browser.find_element(By.ID, "strikes").text
    assert pyncette.strikes() == []


def test_rescheduling_an_instance_changes_its_next_run(
    browser: Any, served: Served, screenshot: Callable[[str], Path]
) -> None:
    pyncette, hello = served.demo.pyncette, served.demo.hello
    browser.get(served.base_url + "/tasks/reminders.hello/instances/user-007")
    before = wait_for(browser, "#next-run").get_attribute("data-at")

    form = browser.find_element(By.ID, "reschedule")
    form.find_element(By.NAME, "cron").send_keys("30 4 29 2 *")  # 04:30 UTC on 29 February
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    # The form posts and the page reloads: an element found on the old page may go stale
    # before it is read, so a stale read is one more poll.
    WebDriverWait(browser, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: b.find_element(By.ID, "next-run").get_attribute("data-at") != before
    )
    after = datetime.fromisoformat(browser.find_element(By.ID, "next-run").get_attribute("data-at"))
    assert (after.month, after.day, after.hour, after.minute) == (2, 29, 4, 30)
    assert "rescheduled" in browser.page_source
    state = pyncette.get_task_state(hello, "user-007")
    assert state is not None
    assert state.scheduled_at == after
    assert dict(state.args) == {"user_id": 7}  # arguments kept
    screenshot("instance-rescheduled")


def test_a_bad_reschedule_shows_the_reason_and_changes_nothing(
    browser: Any, served: Served
) -> None:
    pyncette, hello = served.demo.pyncette, served.demo.hello
    before = pyncette.get_task_state(hello, "user-008")
    browser.get(served.base_url + "/tasks/reminders.hello/instances/user-008")
    form = wait_for(browser, "#reschedule")
    form.find_element(By.NAME, "cron").send_keys("0 0 31 2 *")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    alert = wait_for(browser, ".flash.error")
    assert "never fires" in alert.text
    assert pyncette.get_task_state(hello, "user-008") == before


def _extras_of(served: Served, task: str) -> list[tuple[str | None, datetime]]:
    store, definition = served.demo.pyncette.store, served.demo.pyncette.definition(task)
    return [
        (extra_target(r), r.next_run)
        for p in range(definition.partition_count)
        for r in store.list_instances(task, p, 1000)
        if is_extra_instance(r.key.instance)
    ]


def _drop_extras(served: Served, task: str) -> None:
    store, definition = served.demo.pyncette.store, served.demo.pyncette.definition(task)
    for p in range(definition.partition_count):
        for record in store.list_instances(task, p, 1000):
            if is_extra_instance(record.key.instance):
                store.delete(record.key)


def test_run_now_sends_one_extra_run_and_keeps_the_next_run(
    browser: Any, served: Served, screenshot: Callable[[str], Path]
) -> None:
    pyncette, hello = served.demo.pyncette, served.demo.hello
    browser.get(served.base_url + "/tasks/reminders.hello/instances/user-010")
    before = wait_for(browser, "#next-run").get_attribute("data-at")

    wait_for(browser, "#run-now button[type=submit]").click()

    notice = wait_for(browser, ".flash.info")
    assert "run now sent for" in notice.text
    assert browser.find_element(By.ID, "next-run").get_attribute("data-at") == before
    state = pyncette.get_task_state(hello, "user-010")
    assert state is not None
    assert state.scheduled_at.isoformat() == before
    try:
        assert [target for target, _ in _extras_of(served, "reminders.hello")] == ["user-010"]
        screenshot("instance-run-now")
        # The extra occurrence is not an instance: the task's listing does not show it.
        browser.get(served.base_url + "/tasks/reminders.hello")
        wait_for(browser, "#instances")
        assert not any(
            name.startswith("__pyncette")
            for name in texts(browser, "#instances tbody td:first-child a")
        )
    finally:
        _drop_extras(served, "reminders.hello")


def test_run_now_of_a_running_instance_needs_the_force_box(browser: Any, served: Served) -> None:
    pyncette, hello = served.demo.pyncette, served.demo.hello
    pyncette.schedule_task(hello, "busy-browser", execute_at=clock.utcnow())
    (claimed,) = pyncette.store.claim_due(
        "reminders.hello", 0, clock.utcnow() + timedelta(seconds=1), 10,
        timedelta(minutes=5), "test",
    )  # fmt: skip
    assert claimed.key.instance == "busy-browser"
    try:
        browser.get(served.base_url + "/tasks/reminders.hello/instances/busy-browser")
        wait_for(browser, "#run-now button[type=submit]").click()
        alert = wait_for(browser, ".flash.error")
        assert "is running" in alert.text
        assert _extras_of(served, "reminders.hello") == []

        form = wait_for(browser, "#run-now")
        form.find_element(By.NAME, "force").click()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert "run now sent for" in wait_for(browser, ".flash.info").text
        assert [t for t, _ in _extras_of(served, "reminders.hello")] == ["busy-browser"]
    finally:
        _drop_extras(served, "reminders.hello")
        pyncette.unschedule_task(hello, "busy-browser")


def test_run_now_of_a_static_task_from_its_page(browser: Any, served: Served) -> None:
    browser.get(served.base_url + "/tasks/reports.daily")
    wait_for(browser, "#run-now button[type=submit]").click()
    try:
        assert "run now sent for" in wait_for(browser, ".flash.info").text
        assert [t for t, _ in _extras_of(served, "reports.daily")] == [None]
    finally:
        _drop_extras(served, "reports.daily")


def test_the_instance_page_shows_its_run_history(
    browser: Any, served: Served, screenshot: Callable[[str], Path]
) -> None:
    settle_one(served.demo.pyncette, "user-011", "success", None)
    settle_one(served.demo.pyncette, "user-011", "failed", "TimeoutError: upstream")

    browser.get(served.base_url + "/tasks/reminders.hello/instances/user-011")
    rows = wait_for(browser, "#history").find_elements(By.CSS_SELECTOR, "tbody tr")

    assert len(rows) == 2
    cells = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [row[3] for row in cells] == ["failed", "success"]
    assert cells[0][4:] == ["worker-7", "TimeoutError: upstream"]
    screenshot("instance-history")
