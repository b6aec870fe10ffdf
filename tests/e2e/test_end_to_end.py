"""End to end: real ``celery beat`` and ``celery worker`` processes on a real broker.

Each test deploys its own queue and store, starts the processes, and watches the side channel.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from celery import Celery

from celery_pyncette import Pyncette
from tests.e2e.conftest import StoreConfig
from tests.e2e.harness import Deployment, Event, by_occurrence, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

Deploy = Callable[..., Deployment]


def runs_of(task: str, count: int) -> Callable[[list[Event]], bool]:
    return lambda events: sum(e["task"] == task for e in events) >= count


def test_a_six_field_cron_fires_every_second_with_distinct_scheduled_times(deploy: Deploy) -> None:
    d = deploy(["every_second"])
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(runs_of("e2e.every_second", 4), 40, "four runs")

    runs = sorted(
        (datetime.fromisoformat(e["scheduled_at"]), float(e["at"]))
        for e in events
        if e["task"] == "e2e.every_second"
    )
    times = [scheduled for scheduled, _ in runs]
    assert len(set(times)) == len(times), "an occurrence ran twice"
    assert all(t.microsecond == 0 for t in times)
    # Every second runs, except that an occurrence found late is coalesced with the ones missed
    # meanwhile (the default): a gap is allowed only when the run after it started after the
    # skipped second had passed, i.e. when beat or the worker really was late (a loaded machine).
    for (before, _), (after, started) in itertools.pairwise(runs):
        gap = after - before
        assert gap >= timedelta(seconds=1)
        if gap > timedelta(seconds=1):
            skipped = before + timedelta(seconds=1)
            assert started >= skipped.timestamp() + 1, f"{skipped} was skipped though on time"


def test_a_dynamic_instance_runs_with_its_arguments_and_stops_after_unschedule(
    deploy: Deploy, store: StoreConfig
) -> None:
    d = deploy([])
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}
    client = Celery("e2e-client")
    client.conf.update(pyncette_url=store.url, pyncette_namespace=store.namespace)
    pyncette = Pyncette(client)

    @pyncette.dynamic_task(name="e2e.hello")
    def hello(context: object) -> None: ...

    pyncette.schedule_task(hello, "bill", schedule="* * * * * *", username="bill")
    events = d.wait_for(runs_of("e2e.hello", 2), 40, "two runs of bill")
    assert {(e["instance"], e["args"]["username"]) for e in events} == {("bill", "bill")}

    assert pyncette.unschedule_task(hello, "bill") is True
    settled = len(d.wait_for(runs_of("e2e.hello", 2), 5, "settled"))
    pyncette.schedule_task(hello, "marker", execute_at=datetime.now().astimezone(), username="m")
    events = d.wait_for(
        lambda ev: any(e["instance"] == "marker" for e in ev), 30, "the marker once-off"
    )
    bill_runs = [e for e in events if e["instance"] == "bill"]
    assert len(bill_runs) <= settled + 1, "bill kept running after unschedule_task"
    # The run is recorded from inside the task; its commit (which removes a once-off) follows.
    wait_until(
        d,
        lambda: pyncette.get_task_state(hello, "marker") is None,
        15,
        "the once-off instance to be removed after its run",
    )
    pyncette.close()


def test_unlock_failure_mode_retries_on_the_next_tick(deploy: Deploy) -> None:
    d = deploy(["fail_unlock"], E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(
        lambda ev: any(len(runs) >= 3 for runs in by_occurrence(ev, "e2e.fail_unlock").values()),
        40,
        "one occurrence retried three times",
    )

    runs = max(by_occurrence(events, "e2e.fail_unlock").values(), key=len)
    assert runs[2]["at"] - runs[0]["at"] < 15, "UNLOCK waited for the 30 s lease"


def test_none_failure_mode_retries_only_after_the_lease(deploy: Deploy) -> None:
    d = deploy(["fail_none"], E2E_LEASE="3")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(
        lambda ev: any(len(runs) >= 2 for runs in by_occurrence(ev, "e2e.fail_none").values()),
        40,
        "one occurrence retried",
    )

    first, second = max(by_occurrence(events, "e2e.fail_none").values(), key=len)[:2]
    # the failed run kept its lease (3 s from the claim) and nothing ran before it expired
    assert first["locked_until"] - first["at"] > 1.5
    assert second["at"] >= first["locked_until"] - 0.05


def test_commit_failure_mode_advances_the_schedule(deploy: Deploy) -> None:
    d = deploy(["fail_commit"], E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(runs_of("e2e.fail_commit", 3), 40, "three runs")

    grouped = by_occurrence(events, "e2e.fail_commit")
    assert len(grouped) >= 3
    assert all(len(runs) == 1 for runs in grouped.values())


def test_at_most_once_failures_are_not_retried(deploy: Deploy) -> None:
    d = deploy(["fail_at_most_once"], E2E_LEASE="1")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(runs_of("e2e.fail_at_most_once", 4), 40, "four runs")

    grouped = by_occurrence(events, "e2e.fail_at_most_once")
    assert all(len(runs) == 1 for runs in grouped.values())


def test_a_worker_killed_mid_task_has_its_occurrence_run_again_after_the_lease_once(
    deploy: Deploy,
) -> None:
    d = deploy(["slow"], E2E_LEASE="4", E2E_SLEEP="2")
    d.start_worker("worker1", concurrency=1)
    d.start_beat()
    first = d.wait_for(
        lambda ev: any(e.get("phase") == "start" for e in ev), 40, "the slow task to start"
    )
    killed_at = first[0]["scheduled_at"]
    d.kill("worker1", signal.SIGKILL)
    d.start_worker("worker2", concurrency=1)
    d.must_live = {"worker2", "beat"}

    events = d.wait_for(
        lambda ev: any(e.get("phase") == "end" and e["scheduled_at"] == killed_at for e in ev),
        40,
        "the killed occurrence to run again to the end",
    )
    # Let the next occurrence start too, so a late duplicate of the killed one would have shown.
    events = d.wait_for(
        lambda ev: any(e.get("phase") == "end" and e["scheduled_at"] > killed_at for e in ev),
        30,
        "a later occurrence",
    )

    starts = [e for e in events if e["scheduled_at"] == killed_at and e.get("phase") == "start"]
    ends = [e for e in events if e["scheduled_at"] == killed_at and e.get("phase") == "end"]
    assert len(starts) == 2
    assert len(ends) == 1
    # The lease runs 4 s from beat's claim, not from the start: the first run may start late
    # (a worker's first store call opens its client), so the bound is the lease it ran under.
    assert starts[0]["locked_until"] - starts[0]["at"] > 2
    assert starts[1]["at"] >= starts[0]["locked_until"] - 0.05, "re-sent before the lease expired"


def test_two_beats_on_one_store_run_each_occurrence_once(deploy: Deploy) -> None:
    d = deploy(["every_second"], E2E_LEASE="30")
    d.start_worker(concurrency=2)
    d.start_beat("beat1")
    d.start_beat("beat2")
    d.must_live = {"worker", "beat1", "beat2"}

    events = d.wait_for(runs_of("e2e.every_second", 6), 40, "six runs")

    grouped = by_occurrence(events, "e2e.every_second")
    assert all(len(runs) == 1 for runs in grouped.values()), grouped
    assert "occurrence(s) of e2e.every_second" in d.log("beat1") + d.log("beat2")


def test_a_beat_schedule_entry_on_a_plain_task_fires_and_is_committed(deploy: Deploy) -> None:
    d = deploy([], E2E_BEAT_SCHEDULE="1", E2E_LEASE="30")
    d.start_worker()
    d.start_beat()
    d.must_live = {"worker", "beat"}

    events = d.wait_for(runs_of("plain-every-second", 3), 40, "three runs of the plain task")

    plain = [e for e in events if e.get("label") == "plain"]
    assert len(plain) >= 3
    # current_context() works in a plain task: the schedule identity is the entry name
    assert all(e["scheduled_at"] for e in plain)
    assert len({e["scheduled_at"] for e in plain}) == len(plain)
