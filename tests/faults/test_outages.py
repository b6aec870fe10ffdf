"""The store or the broker unreachable for 30 seconds, through a proxy each test owns.

Every process of the deployment reaches the server through the test's :class:`Proxy`; taking the
proxy down cuts every connection and resets every new one, as a server that stopped would look,
while the shared server itself keeps serving other tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import BROKERS, Deployment, Event, wait_until
from tests.faults.helpers import (
    STORES,
    TASKS,
    Client,
    client_of,
    fault_store,
    report,
    runs,
    tracebacks,
    wait_for_beats,
    with_port,
)
from tests.faults.proxy import Proxy, proxy_to

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(180)]

Deploy = Callable[..., Deployment]
OUTAGE = 30.0
#: Once-off instances of each mode due during the outage.
DUE_DURING = 20
BEATS = ["beat1", "beat2"]


def start(deployed: Deployment) -> None:
    deployed.start_worker("worker", concurrency=2)
    for beat in BEATS:
        deployed.start_beat(beat)
    deployed.must_live = {"worker", *BEATS}
    wait_for_beats(deployed, BEATS)
    wait_until(
        deployed,
        lambda: sum(e["task"] == "e2e.every_second" for e in deployed.events()) >= 2,
        40,
        "the per-second task to run",
    )


def schedule_during_outage(client: Client) -> dict[str, list[str]]:
    """Once-off instances of both modes, due 2 to 28 s from now (inside the outage)."""
    start = client.pyncette.now() + timedelta(seconds=2)
    planned = {}
    for mode in TASKS:
        names = [f"{mode}-{n:02d}" for n in range(DUE_DURING)]
        client.pyncette.scatter(
            client.tasks[mode], names, start=start, over=timedelta(seconds=OUTAGE - 4)
        )
        planned[mode] = names
    return planned


def outage(deployed: Deployment, proxy: Proxy) -> tuple[float, float]:
    """Take the proxy down for :data:`OUTAGE` seconds (the processes must stay up meanwhile);
    return the wall-clock times it went down and came back."""
    proxy.down()
    down_wall, down = time.time(), time.monotonic()
    wait_until(
        deployed,
        lambda: time.monotonic() - down >= OUTAGE,
        OUTAGE + 10,
        "the outage to last its time",
        interval=0.5,
    )
    proxy.up()
    return down_wall, time.time()


def first_after(events: list[Event], task: str, moment: float) -> Event | None:
    later = [e for e in events if e["task"] == task and e["at"] >= moment]
    return min(later, key=lambda e: e["at"], default=None)


def problems(deployed: Deployment, name: str) -> int:
    """Log lines at WARNING or ERROR level."""
    return sum("WARNING/" in line or "ERROR/" in line for line in deployed.log(name).splitlines())


@pytest.mark.parametrize("store_name", list(STORES))
def test_beats_ride_out_a_30s_store_outage_and_nothing_is_lost(
    deploy: Deploy, redis_broker: str, store_name: str
) -> None:
    with fault_store(store_name) as target, client_of(target.url, target.namespace) as client:
        parts = urlsplit(target.url)
        with proxy_to(parts.hostname or "127.0.0.1", parts.port or 0) as proxy:
            deployed = deploy(
                redis_broker, target.via(proxy.port), target.namespace, ["every_second"],
                E2E_LEASE="10",
            )  # fmt: skip
            start(deployed)
            planned = schedule_during_outage(client)

            # When the store is unreachable for 30 s
            down, up = outage(deployed, proxy)
            quiet = {beat: problems(deployed, beat) for beat in BEATS}

            # Then the beats, still up, resume within 5 s ...
            wait_until(
                deployed,
                lambda: first_after(deployed.events(), "e2e.every_second", up) is not None,
                30,
                "the per-second task to run again",
            )
            resumed = first_after(deployed.events(), "e2e.every_second", up)
            assert resumed is not None
            # ... and every occurrence due during the outage runs afterwards
            wait_until(
                deployed,
                lambda: (
                    all(
                        set(runs(deployed.events(), TASKS[mode])) >= set(names)
                        for mode, names in planned.items()
                    )
                    and client.stored("alo") + client.stored("amo") == 0
                ),
                60,
                "the occurrences due during the outage to run",
            )
            events = deployed.events()
            traced = {beat: tracebacks(deployed, beat) for beat in BEATS}

    for mode, names in planned.items():
        executions = runs(events, TASKS[mode])
        assert {n: executions[n] for n in names} == dict.fromkeys(names, 1), mode
    during = [e for e in events if e["task"] == "e2e.every_second" and down < e["at"] < up]
    assert during == [], "a task ran while the store was unreachable"
    assert all(count <= 2 for count in traced.values()), f"a traceback storm: {traced}"
    assert all(quiet.values()), "the outage was not logged"
    resume_seconds = resumed["at"] - up
    report(
        "store unreachable for 30 s",
        store=store_name,
        resumed_seconds_after=round(resume_seconds, 1),
        due_during_outage=sum(len(n) for n in planned.values()),
        lost=0,
        tracebacks_per_beat=list(traced.values()),
        warnings_and_errors_per_beat=list(quiet.values()),
        connections_refused=proxy.refused,
    )
    assert resume_seconds <= 5, f"the beats resumed {resume_seconds:.1f}s after the store"


@pytest.mark.parametrize("store_name", list(STORES))
def test_claims_whose_publish_failed_during_a_30s_broker_outage_are_sent_once_it_is_back(
    deploy: Deploy, store_name: str
) -> None:
    broker, host, port = BROKERS["redis"]
    with (
        fault_store(store_name) as target,
        client_of(target.url, target.namespace) as client,
        proxy_to(host, port) as proxy,
    ):
        deployed = deploy(
            with_port(broker, proxy.port), target.url, target.namespace, ["every_second"],
            E2E_LEASE="60",
        )  # fmt: skip
        start(deployed)
        planned = schedule_during_outage(client)

        # When the broker is unreachable for 30 s
        _, up = outage(deployed, proxy)

        # Then what the beats claimed and could not send was unlocked, and is sent once it is
        # back: long before the 60 s lease would have expired.
        wait_until(
            deployed,
            lambda: set(runs(deployed.events(), TASKS["alo"])) >= set(planned["alo"]),
            30,
            "the at-least-once occurrences to run",
        )
        events = deployed.events()
        unsent = sum("were not sent" in deployed.log(beat) for beat in BEATS)
        traced = [tracebacks(deployed, beat) for beat in BEATS]

    alo = runs(events, TASKS["alo"])
    assert {n: alo[n] for n in planned["alo"]} == dict.fromkeys(planned["alo"], 1)
    late = max(e["at"] for e in events if e["instance"] in planned["alo"]) - up
    assert late < 15, f"sent {late:.0f}s after the broker came back: the claims stayed locked"
    assert unsent, "no beat reported a failed publish"
    # At-most-once occurrences are committed before they are sent: a failed send loses them.
    amo = runs(events, TASKS["amo"])
    assert all(amo[n] <= 1 for n in planned["amo"])
    report(
        "broker unreachable for 30 s",
        store=store_name,
        at_least_once_due_during=len(planned["alo"]),
        at_least_once_ran=sum(1 for n in planned["alo"] if alo[n]),
        last_sent_seconds_after=round(late, 1),
        at_most_once_due_during=len(planned["amo"]),
        at_most_once_ran=sum(1 for n in planned["amo"] if amo[n]),
        tracebacks_per_beat=traced,
    )
