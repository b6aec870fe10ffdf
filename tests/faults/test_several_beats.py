"""Several beats on one store, 10,000 occurrences: none runs twice, and a killed beat's claims are
taken over by the others within one lease.

The occurrences are 10,000 once-off instances of a task with 8 partitions, scattered over a few
seconds, so the beats contend for every partition at once. Two solo-pool workers run them; each
execution appends one line to the deployment's side channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.harness import (
    BROKERS,
    Deployment,
    event_count,
    extra_env,
    start_solo_worker,
    wait_until,
)
from tests.faults.helpers import (
    BATCH_SIZE,
    STORES,
    TASKS,
    Client,
    client_of,
    fault_store,
    kill_beat,
    queue_size,
    report,
    runs,
    sent_by,
    wait_for_beats,
    with_port,
)
from tests.faults.proxy import proxy_to

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(240)]

Deploy = Callable[..., Deployment]
OCCURRENCES = 10_000
BEATS = ["beat1", "beat2", "beat3"]
MODES = {"alo": "at-least-once", "amo": "at-most-once"}


def names() -> list[str]:
    return [f"user-{n:05d}" for n in range(OCCURRENCES)]


def scatter(client: Client, mode: str, over: float) -> None:
    """Write the 10,000 once-offs, due over ``over`` seconds from now. The beats are started
    afterwards, so that they face the backlog due by then at once."""
    client.pyncette.scatter(client.tasks[mode], names(), over=timedelta(seconds=over))


def start_workers(deployed: Deployment) -> None:
    start_solo_worker(deployed, "worker1")
    start_solo_worker(deployed, "worker2")
    deployed.must_live = {"worker1", "worker2"}


def start_beats(
    deployed: Deployment, env: dict[str, dict[str, str]] | None = None
) -> dict[str, str]:
    """Three beats (``env``: extra variables per beat); return their lease owners once they run."""
    for beat in BEATS:
        with extra_env(deployed, **(env or {}).get(beat, {})):
            deployed.start_beat(beat)
    deployed.must_live |= set(BEATS)
    return wait_for_beats(deployed, BEATS)


def settled(deployed: Deployment, broker: str, stored: Callable[[], int]) -> Callable[[], bool]:
    """Nothing left to run: the store holds no instance, the queue is empty, and the side channel
    stopped growing (the last prefetched messages have run)."""
    seen = [-1, 0.0]

    def check() -> bool:
        count = event_count(deployed)
        if count != seen[0]:
            seen[0], seen[1] = count, time.monotonic()
            return False
        quiet = time.monotonic() - seen[1] >= 1.0
        return quiet and stored() == 0 and queue_size(broker, deployed.queue) == 0

    return check


#: (store, mode) of the three-beats test: each fault store in both modes, and DynamoDB on dynalite
#: in at-most-once only. There each occurrence costs the most requests (claims and commits are one
#: conditional write each, the setup writes the 10,000 one at a time), and at-most-once is the mode
#: in which only the claims' atomicity stops a duplicate (no worker-side lease check to mask one).
#: It is also the slowest: each request costs a few ms of CPU (boto3's and the emulator's), ~4
#: requests an occurrence, so it is given longer bounds.
THREE_BEATS = [(store, mode) for store in STORES for mode in MODES] + [
    pytest.param("dynamodb", "amo", marks=pytest.mark.timeout(420))
]
#: Seconds the beats may take to run all 10,000, by store (150 unless named).
ALL_RUN_WITHIN = {"dynamodb": 300}


@pytest.mark.parametrize(("store_name", "mode"), THREE_BEATS)
def test_three_beats_run_each_of_10000_occurrences_exactly_once(
    deploy: Deploy, redis_broker: str, store_name: str, mode: str
) -> None:
    task = TASKS[mode]
    with fault_store(store_name) as target, client_of(target.url, target.namespace) as client:
        # No fault here: a lease longer than any queue wait, so nothing is sent twice.
        deployed = deploy(redis_broker, target.url, target.namespace, [], E2E_LEASE="120")
        start_workers(deployed)
        began = time.monotonic()
        scatter(client, mode, over=3)
        start_beats(deployed)
        took = wait_until(
            deployed,
            lambda: event_count(deployed) >= OCCURRENCES and client.stored(mode) == 0,
            ALL_RUN_WITHIN.get(store_name, 150),
            f"{OCCURRENCES} executions",
            interval=0.25,
        )
        wait_until(
            deployed,
            settled(deployed, redis_broker, lambda: client.stored(mode)),
            30,
            "the queue to drain",
        )
        executions = runs(deployed.events(), task)

    sent = {beat: sent_by(deployed, beat, task) for beat in BEATS}
    twice = sorted(name for name, count in executions.items() if count > 1)
    assert twice == [], f"{len(twice)} occurrences ran more than once: {twice[:10]}"
    assert set(executions) == set(names()), "occurrences that never ran"
    assert all(sent.values()), f"a beat sent nothing: {sent}"
    report(
        "three beats, 10,000 occurrences",
        store=store_name,
        mode=MODES[mode],
        seconds=round(time.monotonic() - began, 1),
        all_ran_after=round(took, 1),
        executions=sum(executions.values()),
        duplicates=len(twice),
        sent_per_beat=list(sent.values()),
        sent_again=sum(sent.values()) - OCCURRENCES,
    )


#: Leases of the kill test: how long the killed beat's unsent claims wait before the others take
#: them over (the messages it sent are held over their queue wait by pyncette_delivery_timeout).
KILL_LEASES = {
    ("redis", "alo"): 30,
    ("postgres", "alo"): 60,
    ("redis", "amo"): 15,
    ("postgres", "amo"): 15,
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("store_name", list(STORES))
def test_a_beat_killed_while_dispatching_10000_occurrences_is_taken_over_within_one_lease(
    deploy: Deploy, redis_broker: str, store_name: str, mode: str
) -> None:
    lease = KILL_LEASES[(store_name, mode)]
    task = TASKS[mode]
    with (
        fault_store(store_name) as target,
        client_of(target.url, target.namespace) as client,
        proxy_to(*BROKERS["redis"][1:]) as beat1_broker,
    ):
        deployed = deploy(redis_broker, target.url, target.namespace, [], E2E_LEASE=str(lease))
        start_workers(deployed)

        # Given three beats dispatching 10,000 occurrences falling due over 12 s (all at once,
        # the beats would have sent nearly all of them before beat1 hangs)
        scatter(client, mode, over=12)
        beat1_env = {"E2E_BROKER": with_port(redis_broker, beat1_broker.port)}
        owners = start_beats(deployed, {"beat1": beat1_env})
        wait_until(
            deployed,
            lambda: (
                sent_by(deployed, "beat1", task) >= 100
                and sum(sent_by(deployed, b, task) for b in BEATS) >= 1500
            ),
            60,
            "the beats to dispatch",
            interval=0.05,
        )

        # When beat1 hangs publishing a batch it has claimed, and is killed there
        beat1_broker.pause()
        wait_until(deployed, stalled(deployed, "beat1"), 30, "beat1 to hang in a publish")
        killed_at = kill_beat(deployed, "beat1")
        beat1_broker.down()  # what it was sending never reaches the broker
        sent_at_kill = {beat: sent_by(deployed, beat, task) for beat in BEATS}
        # Its claims not sent: still under the lease of their claim (those it sent are held
        # over their wait in the queue, pyncette_delivery_timeout, and run from its messages).
        unsent_until = datetime.now(timezone.utc) + timedelta(seconds=lease + 5)
        held = client.claims_of(mode, owners["beat1"])
        orphans = {k: c for k, c in held.items() if c.locked_until <= unsent_until}

        # Then the others take over its claims once their lease expires ...
        wait_until(
            deployed,
            lambda: not client.still_held(mode, orphans),
            lease + 30,
            "the killed beat's claims to be taken over",
            interval=0.2,
        )
        taken_over = datetime.now(timezone.utc)
        takeover = time.monotonic() - killed_at
        # ... and everything left runs
        wait_until(
            deployed,
            settled(deployed, redis_broker, lambda: client.stored(mode)),
            150,
            "every remaining occurrence to run",
            interval=0.25,
        )
        events = [e for e in deployed.events() if e["task"] == task]

    executions = runs(events, task)
    sent_after_kill = sum(sent_by(deployed, b, task) - sent_at_kill[b] for b in BEATS[1:])
    # 1,500 or more were sent before the kill (see above), 1,000 or more after it.
    assert sent_after_kill >= 1000, "beat1 was not killed in the middle of dispatching"
    twice = sorted(name for name, count in executions.items() if count > 1)
    never = sorted(set(names()) - set(executions))
    # The killed beat's claims, by how they ran: from its own message, sent before it hung, or
    # from a survivor's new claim once the lease had expired.
    own = {
        e["instance"]
        for e in events
        if e["instance"] in orphans
        and orphans[e["instance"]].lease in (e["lease"], e.get("run_lease"))
    }
    retaken = [e for e in events if e["instance"] in orphans and e["instance"] not in own]
    early = [e for e in retaken if e["at"] < orphans[e["instance"]].locked_until.timestamp() - 0.5]
    expiries = [orphans[e["instance"]].locked_until for e in retaken]
    last_expiry = max(expiries, default=taken_over)
    if mode == "alo":
        assert retaken, "beat1 held no unsent claim when it died: nothing was taken over"
        assert never == [], f"at-least-once: {len(never)} occurrences never ran: {never[:10]}"
        # Not promised by at-least-once, but the worker's lease check makes it so here.
        assert twice == [], f"{len(twice)} occurrences ran twice: {twice[:10]}"
        assert early == [], "a survivor took a claim over before its lease expired"
        assert (taken_over - last_expiry).total_seconds() <= 5, "took longer than the lease"
    else:
        assert twice == [], f"at-most-once: {len(twice)} occurrences ran twice: {twice[:10]}"
        # Only the batch committed but not sent when the beat died is lost.
        assert 0 < len(never) <= BATCH_SIZE, f"at-most-once lost {len(never)} occurrences"
        assert set(orphans) <= set(executions), "a claimed, uncommitted occurrence never ran"
    report(
        "SIGKILL of one of three beats",
        store=store_name,
        mode=MODES[mode],
        lease=lease,
        sent_by_killed_beat=sent_at_kill["beat1"],
        sent_after_kill=sent_after_kill,
        claims_held_by_killed_beat=len(orphans),
        run_from_its_messages=len(own),
        taken_over_by_survivors=len({e["instance"] for e in retaken}),
        takeover_seconds_after_kill=round(takeover, 1),
        takeover_seconds_after_lease_expiry=round((taken_over - last_expiry).total_seconds(), 1),
        never_ran=len(never),
        ran_twice=len(twice),
    )


def stalled(deployed: Deployment, beat: str) -> Callable[[], bool]:
    """True once the beat's log has not grown for a second (it hangs in a publish)."""
    seen = [-1, 0.0]

    def check() -> bool:
        size = len(deployed.log(beat))
        if size != seen[0]:
            seen[0], seen[1] = size, time.monotonic()
            return False
        return time.monotonic() - seen[1] >= 1.0

    return check
