"""A beat whose clock runs 5 s ahead of the others.

Judged by its own clock, it would find every occurrence due 5 s early and every lease expired 5 s
early: it would run occurrences early and take over leases that are still live. Beats judge due
times and leases by the store's clock instead (Redis ``TIME``, PostgreSQL ``clock_timestamp()``),
so neither happens. The skew is injected with ``E2E_CLOCK_OFFSET`` (tests/e2e/proj.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

import pytest

from tests.e2e.harness import Deployment, Event, extra_env
from tests.faults.helpers import STORES, fault_store, report, sent_by, wait_for_beats

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(120)]

Deploy = Callable[..., Deployment]
AHEAD = 5.0
#: How much earlier than its scheduled time an execution may start (clock reading noise).
TOLERANCE = 0.5


def started(events: list[Event]) -> list[Event]:
    """Executions of the per-second tasks, as they started."""
    return [
        e
        for e in events
        if e["task"] in {"e2e.every_second", "e2e.slow"} and e.get("phase", "start") == "start"
    ]


def enough(events: list[Event]) -> bool:
    ends = sum(e.get("phase") == "end" for e in events)
    per_second = sum(e["task"] == "e2e.every_second" for e in events)
    return bool(ends >= 3 and per_second >= 10)


@pytest.mark.parametrize("store_name", list(STORES))
def test_a_beat_5s_ahead_neither_runs_occurrences_early_nor_takes_over_live_leases(
    deploy: Deploy, redis_broker: str, store_name: str
) -> None:
    # Given a task that runs 4 s under a 6 s lease, a per-second task, and two beats, one of them
    # with a clock 5 s ahead (which, by its own clock, sees a running lease expire after 1 s)
    with fault_store(store_name) as target:
        deployed = deploy(
            redis_broker, target.url, target.namespace, ["every_second", "slow"],
            E2E_LEASE="6", E2E_SLEEP="4",
        )  # fmt: skip
        deployed.start_worker("worker", concurrency=3)
        deployed.start_beat("beat")
        with extra_env(deployed, E2E_CLOCK_OFFSET=str(AHEAD)):
            deployed.start_beat("ahead")
        deployed.must_live = {"worker", "beat", "ahead"}
        wait_for_beats(deployed, ["beat", "ahead"])

        # When both dispatch for a while
        events = deployed.wait_for(enough, 60, "three runs of the slow task")

    # Then no occurrence starts before it is due ...
    early = [
        round(datetime.fromisoformat(e["scheduled_at"]).timestamp() - e["at"], 2)
        for e in started(events)
        if e["at"] < datetime.fromisoformat(e["scheduled_at"]).timestamp() - TOLERANCE
    ]
    # ... and no running occurrence is claimed again while its lease is live
    starts = Counter(e["scheduled_at"] for e in events if e.get("phase") == "start")
    stolen = sorted(at for at, count in starts.items() if count > 1)
    ahead_sent = sent_by(deployed, "ahead", "e2e.every_second") + sent_by(
        deployed, "ahead", "e2e.slow"
    )
    report(
        "a beat 5 s ahead",
        store=store_name,
        executions=len(started(events)),
        sent_by_the_beat_ahead=ahead_sent,
        started_early=len(early),
        most_early_seconds=max(early, default=0),
        leases_taken_over_while_live=len(stolen),
    )
    assert ahead_sent, "the beat ahead sent nothing: the test proves nothing"
    assert early == [], f"occurrences started early by (s): {early}"
    assert stolen == [], f"live leases were taken over for {stolen}"
