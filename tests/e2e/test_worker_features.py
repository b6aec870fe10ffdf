"""Worker-side features in real prefork workers: middlewares, fixtures, heartbeats, strikes,
concurrency limits. Run on the Redis broker (the broker matrix is covered by test_end_to_end)."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
from collections.abc import Callable

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette
from tests.e2e.conftest import StoreConfig
from tests.e2e.harness import Deployment, Event, by_occurrence, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

Deploy = Callable[..., Deployment]


@pytest.fixture
def combination() -> tuple[str, str]:
    return ("redis", "sqlite")


def client(store: StoreConfig) -> Pyncette:
    app = Celery("e2e-client", set_as_current=False)
    app.conf.update(
        pyncette_url=store.url, pyncette_namespace=store.namespace, pyncette_poll_interval=0.2
    )
    extension = Pyncette(app)

    @extension.task(name="e2e.strikable", schedule="* * * * * *")
    def strikable(context: Context) -> None: ...

    @extension.dynamic_task(name="e2e.self_unschedule")
    def self_unschedule(context: Context) -> None: ...

    @extension.dynamic_task(name="e2e.limited")
    def limited(context: Context) -> None: ...

    return extension


def steps_of(events: list[Event], task: str) -> list[str]:
    first = next(e["scheduled_at"] for e in events if e["task"] == task and e.get("step"))
    return [
        e["step"]
        for e in events
        if e["task"] == task and e["scheduled_at"] == first and e.get("step")
    ]


def test_middlewares_run_in_declaration_order_around_the_task(deploy: Deploy) -> None:
    d = deploy(["middleware", "mw"], E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(
        lambda ev: any(e.get("step") == "outer-after" for e in ev), 40, "one full run"
    )

    assert steps_of(events, "e2e.mw") == [
        "outer-before",
        "inner-before",
        "task",
        "inner-after",
        "outer-after",
    ]


def test_an_exception_from_a_middleware_is_the_tasks_failure(deploy: Deploy) -> None:
    d = deploy(["middleware", "mw_fail"], E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(
        lambda ev: any(
            sum(e.get("step") == "inner-before" for e in runs) >= 2
            for runs in by_occurrence(ev, "e2e.mw_fail").values()
        ),
        40,
        "the failed occurrence retried (UNLOCK) after the middleware raised",
    )

    assert not any(e.get("step") == "task" for e in events if e["task"] == "e2e.mw_fail")
    assert [e.get("step") for e in events if e["task"] == "e2e.mw_fail"][:3] == [
        "outer-before",
        "inner-before",
        "outer-after",
    ]


def test_fixtures_are_set_up_once_per_process_and_torn_down_in_reverse_at_shutdown(
    deploy: Deploy,
) -> None:
    d = deploy(["fixtures", "uses_fixtures"], E2E_LEASE="30")
    worker = d.start_worker(concurrency=1)
    d.start_beat()
    d.must_live = {"worker", "beat"}
    d.wait_for(lambda ev: sum(e["task"] == "e2e.uses_fixtures" for e in ev) >= 3, 40, "three runs")

    d.kill("beat", signal.SIGTERM)
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not shut down on SIGTERM")

    events = d.events()
    runs = [e for e in events if e["task"] == "e2e.uses_fixtures"]
    assert all(e["values"] == ["first-value", "second-value"] for e in runs)
    fixture_steps = [(e["fixture"], e["step"]) for e in events if e.get("fixture")]
    assert fixture_steps == [
        ("first", "setup"),
        ("second", "setup"),
        ("second", "teardown"),
        ("first", "teardown"),
    ]
    assert len({e["pid"] for e in events if e.get("fixture")}) == 1


@pytest.mark.parametrize("with_heartbeat", [True, False], ids=["heartbeat", "no-heartbeat"])
def test_a_long_task_with_a_heartbeat_runs_once_and_without_it_is_sent_again(
    deploy: Deploy, with_heartbeat: bool
) -> None:
    task = "e2e.heartbeat" if with_heartbeat else "e2e.slow"
    d = deploy(["heartbeat" if with_heartbeat else "slow"], E2E_LEASE="3", E2E_SLEEP="10")
    d.start_worker(concurrency=2)
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(
        lambda ev: any(e.get("phase") == "end" for e in ev if e["task"] == task),
        60,
        "the first run to end",
    )

    first = min(by_occurrence(events, task))
    starts = [e for e in by_occurrence(events, task)[first] if e.get("phase") == "start"]
    if with_heartbeat:
        assert len(starts) == 1
        end = next(e for e in events if e.get("phase") == "end")
        assert end["lease_lost"] is False
    else:
        assert len(starts) >= 2, "the expired lease was not re-sent"
        assert 2.5 <= starts[1]["at"] - starts[0]["at"] <= 8


def test_a_heartbeat_after_the_instance_was_unscheduled_raises(
    deploy: Deploy, store: StoreConfig
) -> None:
    d = deploy([], E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}
    pyncette = client(store)

    pyncette.schedule_task("e2e.self_unschedule", "me", schedule="* * * * * *")
    events = d.wait_for(lambda ev: any(e.get("heartbeat") for e in ev), 40, "the run")

    assert [e["heartbeat"] for e in events if e.get("heartbeat")] == ["lost"]
    pyncette.close()


def test_a_strike_landing_while_messages_are_queued_skips_them_until_restored(
    deploy: Deploy, store: StoreConfig
) -> None:
    d = deploy(["strikable"], E2E_LEASE="30")
    d.start_beat()
    d.must_live = {"beat"}
    pyncette = client(store)
    # No worker yet: the occurrence is sent and waits in the queue under its lease.
    d.wait_for(lambda ev: "occurrence(s) of e2e.strikable" in d.log("beat"), 40, "a queued message")

    pyncette.strike(None, "customer_id", "==", 12345)
    d.start_worker()
    d.must_live = {"beat", "worker"}

    def struck_and_drained(_: list[Event]) -> bool:
        state = pyncette.get_task_state("e2e.strikable")
        return (
            state is not None and state.last_status == "struck" and "struck by" in d.log("worker")
        )

    d.wait_for(struck_and_drained, 40, "queued messages skipped by the worker")
    assert not [e for e in d.events() if e["task"] == "e2e.strikable"], "a struck occurrence ran"

    assert pyncette.restore(None, "customer_id", "==", 12345) is True
    events = d.wait_for(
        lambda ev: any(e["task"] == "e2e.strikable" for e in ev), 40, "runs after restore"
    )
    assert events
    pyncette.close()


def test_a_per_argument_concurrency_limit_holds_across_workers(
    deploy: Deploy, store: StoreConfig
) -> None:
    d = deploy([], E2E_LEASE="10")
    d.start_worker("worker1", concurrency=2)
    d.start_worker("worker2", concurrency=2)
    d.start_beat()
    d.must_live = {"worker1", "worker2", "beat"}
    pyncette = client(store)
    for name in ("a", "b", "c", "d"):
        pyncette.schedule_task("e2e.limited", name, schedule="* * * * * *", customer_id=1)

    events = d.wait_for(
        lambda ev: sum(e.get("phase") == "end" for e in ev) >= 8, 60, "eight limited runs"
    )

    spans = []
    for event in events:
        if event.get("phase") == "start":
            end = (
                next(
                    e
                    for e in events
                    if e.get("phase") == "end"
                    and e["instance"] == event["instance"]
                    and e["scheduled_at"] == event["scheduled_at"]
                    and e["at"] >= event["at"]
                )
                if any(
                    e.get("phase") == "end"
                    and e["instance"] == event["instance"]
                    and e["scheduled_at"] == event["scheduled_at"]
                    for e in events
                )
                else None
            )
            if end is not None:
                spans.append((event["at"], end["at"]))
    spans.sort()
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlaps == [], "two runs for customer 1 overlapped"
    assert len({e["pid"] for e in events if e.get("phase")}) >= 2 or len(spans) >= 8
    pyncette.close()


def test_signals_tell_each_occurrence_from_claim_to_settlement(deploy: Deploy) -> None:
    d = deploy(["every_second", "fail_unlock"], E2E_SIGNALS="1")
    d.start_beat()
    d.start_worker()
    d.must_live = {"beat", "worker"}

    def settled_both(events: list[Event]) -> bool:
        outcomes = {
            (e["task"], e["outcome"]) for e in events if e.get("signal") == "occurrence_settled"
        }
        return {("e2e.every_second", "success"), ("e2e.fail_unlock", "unlocked")} <= outcomes

    events = d.wait_for(settled_both, 40, "both tasks settled")
    signalled = [e for e in events if e.get("signal")]
    for e in signalled:
        expected_role = (
            "beat" if e["signal"] in ("occurrence_claimed", "occurrence_sent") else "worker"
        )
        assert e["role"] == expected_role, e
        assert e["sender"] == e["task"], e
    ran = {
        e["scheduled_at"] for e in events if e["task"] == "e2e.every_second" and not e.get("signal")
    }
    settled = {
        e["scheduled_at"]
        for e in signalled
        if e["signal"] == "occurrence_settled" and e["task"] == "e2e.every_second"
    }
    claimed = {e["scheduled_at"] for e in signalled if e["signal"] == "occurrence_claimed"}
    sent = {e["scheduled_at"] for e in signalled if e["signal"] == "occurrence_sent"}
    assert settled, "no occurrence settled"
    assert settled <= ran, "each settled occurrence ran"
    assert settled <= sent <= claimed, "settled after sent after claimed"
    assert all(e["lease"] for e in signalled if e["signal"] == "occurrence_claimed")
    # The receiver that raises on every send was logged, and sending went on.
    assert "a receiver that raises" in d.log("beat")


def test_context_logger_lines_reach_the_worker_log_in_celerys_task_format(
    deploy: Deploy,
) -> None:
    d = deploy(["logs"], E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}
    events = d.wait_for(lambda ev: any(e["task"] == "e2e.logs" for e in ev), 40, "a run")

    # Celery's task format names the task and its id; the message names the occurrence.
    line = re.compile(
        r"e2e\.logs\[[0-9a-f-]{36}\]: \[task=e2e\.logs scheduled_at=(\S+)\] "
        r"logged through context\.logger"
    )
    wait_until(d, lambda: line.search(d.log("worker")) is not None, 20, "the line in the log")
    logged = set(line.findall(d.log("worker")))
    first = next(e for e in events if e["task"] == "e2e.logs")
    assert first["scheduled_at"] in logged
