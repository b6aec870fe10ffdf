"""A backlog that waits in the broker far longer than its lease is not sent again, and a batch the
broker lost is sent again within ``pyncette_delivery_timeout``.

Beat claims each occurrence under ``lease_duration`` and, once the batch is published, extends the
batch's leases over their wait in the queue up to ``pyncette_delivery_timeout``; the worker takes
a full lease of its own when the execution starts. Real ``celery beat`` and ``celery worker``
processes, a Redis broker and a Redis store; each execution appends a line to the side channel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis

from tests.e2e.harness import Deployment, event_count, start_solo_worker, wait_until
from tests.faults.helpers import (
    BATCH_SIZE,
    TASKS,
    Client,
    client_of,
    fault_store,
    report,
    runs,
    sent_by,
    wait_for_beats,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(240)]

Deploy = Callable[..., Deployment]
TASK = TASKS["alo"]


@contextmanager
def sampled_queue(broker: str, queue: str, every: float = 0.1) -> Iterator[list[int]]:
    """Sample the length of ``queue`` in the background; the samples so far."""
    client = redis.Redis.from_url(broker)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            samples.append(int(client.llen(queue)))

    sampler = threading.Thread(target=sample, name="queue-sampler", daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        stop.set()
        sampler.join(5)
        client.close()


def due_now(client: Client, names: list[str]) -> None:
    """Once-offs of the at-least-once fault task, all due a second ago."""
    start = client.pyncette.now() - timedelta(seconds=2)
    client.pyncette.scatter(client.tasks["alo"], names, start=start, over=timedelta(seconds=1))


#: The backlog test: 5,000 occurrences, a 3 s lease, two solo workers at 12 ms a run: draining
#: takes at least 30 s, ten leases (40 s on an idle 2-core machine, about a minute under load).
BACKLOG = 5_000
BACKLOG_LEASE = 3.0
RUN_SECONDS = 0.012
BACKLOG_WORKERS = ["worker1", "worker2"]
BACKLOG_BEATS = ["beat1", "beat2"]


def test_a_backlog_of_5000_waiting_ten_leases_is_sent_once_and_runs_once(
    deploy: Deploy, redis_broker: str
) -> None:
    names = [f"user-{n:05d}" for n in range(BACKLOG)]
    with fault_store("redis") as target, client_of(target.url, target.namespace) as client:
        deployed = deploy(
            redis_broker,
            target.url,
            target.namespace,
            [],
            E2E_LEASE=str(BACKLOG_LEASE),
            E2E_FAULT_SLEEP=str(RUN_SECONDS),
        )
        # Given 5,000 occurrences due at once, two beats and workers that need > 30 s
        due_now(client, names)
        for worker in BACKLOG_WORKERS:
            start_solo_worker(deployed, worker)
        for beat in BACKLOG_BEATS:
            deployed.start_beat(beat)
        deployed.must_live = {*BACKLOG_WORKERS, *BACKLOG_BEATS}
        wait_for_beats(deployed, BACKLOG_BEATS)
        # When the worker drains the queue
        with sampled_queue(redis_broker, deployed.queue) as samples:
            took = wait_until(
                deployed,
                lambda: event_count(deployed) >= BACKLOG and client.stored("alo") == 0,
                150,
                f"{BACKLOG} executions",
                interval=0.5,
            )
            # a second more: anything sent again would show in the queue
            wait_until(deployed, lambda: bool(samples) and samples[-1] == 0, 10, "an empty queue")
        events = [e for e in deployed.events() if e["task"] == TASK]

    # Then every occurrence ran exactly once, nearly every one sent once, and the queue never
    # held more than the backlog plus one batch per beat
    executions = runs(events, TASK)
    sent = sum(sent_by(deployed, beat, TASK) for beat in BACKLOG_BEATS)
    drained_in = max(e["at"] for e in events) - min(e["at"] for e in events)
    twice = sorted(name for name, count in executions.items() if count > 1)
    assert drained_in >= 30, f"the worker drained the backlog in {drained_in:.1f} s, not >= 30 s"
    assert twice == [], f"{len(twice)} occurrences ran more than once: {twice[:10]}"
    assert set(executions) == set(names), "occurrences that never ran"
    assert sent <= 1.02 * BACKLOG, f"beats sent {sent} messages for {BACKLOG} occurrences"
    assert max(samples) <= BACKLOG + BATCH_SIZE * len(BACKLOG_BEATS), f"queue up to {max(samples)}"
    report(
        "a backlog waiting more than ten leases",
        store="redis",
        occurrences=BACKLOG,
        lease=BACKLOG_LEASE,
        drained_in=round(drained_in, 1),
        all_ran_after=round(took, 1),
        sent=sent,
        queue_max=max(samples),
        ran_twice=len(twice),
    )


#: The lost-messages test: a 3 s lease, a 10 s delivery timeout.
LOST = 20
LOST_LEASE = 3.0
DELIVERY_TIMEOUT = 10.0


def test_messages_the_broker_lost_are_sent_again_after_the_delivery_timeout_and_run_once(
    deploy: Deploy, redis_broker: str
) -> None:
    names = [f"lost-{n:02d}" for n in range(LOST)]
    broker = redis.Redis.from_url(redis_broker)
    with fault_store("redis") as target, client_of(target.url, target.namespace) as client:
        deployed = deploy(
            redis_broker,
            target.url,
            target.namespace,
            [],
            E2E_LEASE=str(LOST_LEASE),
            E2E_DELIVERY_TIMEOUT=str(DELIVERY_TIMEOUT),
        )
        # Given occurrences sent while no worker runs
        due_now(client, names)
        deployed.start_beat("beat")
        deployed.must_live = {"beat"}
        wait_for_beats(deployed, ["beat"])
        wait_until(deployed, lambda: broker.llen(deployed.queue) == LOST, 30, "the messages", 0.05)
        sent_at = time.time()
        # When the broker loses them (the queue is purged)
        broker.delete(deployed.queue)
        start_solo_worker(deployed, "worker")
        deployed.must_live.add("worker")
        # Then beat sends them again once the delivery timeout has passed, and each runs once
        wait_until(
            deployed,
            lambda: event_count(deployed) >= LOST and client.stored("alo") == 0,
            DELIVERY_TIMEOUT + 30,
            "the lost occurrences to run",
            interval=0.2,
        )
        events = [e for e in deployed.events() if e["task"] == TASK]
        sent = sent_by(deployed, "beat", TASK)
    broker.close()

    executions = runs(events, TASK)
    first, last = min(e["at"] for e in events), max(e["at"] for e in events)
    assert executions == dict.fromkeys(names, 1), f"ran: {executions}"
    assert sent == 2 * LOST, f"beat sent {sent} messages: each lost one is sent again once"
    assert first >= sent_at + DELIVERY_TIMEOUT - 1, "sent again before the delivery timeout"
    # The documented bound: the delivery timeout after the send, plus a poll and a worker's run.
    assert last <= sent_at + DELIVERY_TIMEOUT + 5, f"ran {last - sent_at:.1f} s after the send"
    report(
        "messages lost by the broker",
        store="redis",
        lease=LOST_LEASE,
        delivery_timeout=DELIVERY_TIMEOUT,
        first_run_after_send=round(first - sent_at, 1),
        last_run_after_send=round(last - sent_at, 1),
        sent=sent,
    )
