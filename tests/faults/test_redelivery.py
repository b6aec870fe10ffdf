"""The same message delivered a second time while its first delivery runs does not run again; when
the first worker is then killed, the occurrence runs once more after its lease.

A broker redelivers a running message when it thinks its consumer is gone (Redis
``visibility_timeout``, RabbitMQ ``consumer_timeout``). Here the test publishes the identical
message again, byte for byte, to a queue a second worker consumes. Real ``celery beat`` and
``celery worker`` processes, a Redis broker and a Redis store.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from tests.e2e.harness import Deployment, Event, extra_env, wait_until
from tests.faults.helpers import client_of, fault_store, sent_by, wait_for_beats

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(150)]

Deploy = Callable[..., Deployment]
TASK = "e2e.fault_slow"
LEASE = 15.0


def start_worker(deployed: Deployment, name: str, queues: list[str], sleep: float) -> int:
    """A solo worker on ``queues`` whose ``e2e.fault_slow`` runs take ``sleep`` s; its pid."""
    with extra_env(deployed, E2E_SLEEP=str(sleep)):
        process = deployed._start(
            name,
            "worker",
            "-l",
            "INFO",
            "-P",
            "solo",
            "-Q",
            ",".join(queues),
            "-n",
            f"{name}-{deployed.queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        )
    deployed.must_live.add(name)
    return process.pid


def starts(deployed: Deployment) -> list[Event]:
    return [e for e in deployed.events() if e["task"] == TASK and e.get("phase") != "end"]


def test_a_second_delivery_while_the_first_runs_is_skipped_and_a_killed_run_runs_again(
    deploy: Deploy, redis_broker: str
) -> None:
    broker = redis.Redis.from_url(redis_broker)
    with fault_store("redis") as target, client_of(target.url, target.namespace) as client:
        deployed = deploy(redis_broker, target.url, target.namespace, [], E2E_LEASE=str(LEASE))
        copies = f"{deployed.queue}-copies"

        @client.pyncette.dynamic_task(name=TASK)
        def fault_slow(context: object) -> None: ...

        client.pyncette.schedule_task(
            fault_slow, "slow-1", execute_at=client.pyncette.now() - timedelta(seconds=1)
        )
        deployed.start_beat("beat")
        deployed.must_live = {"beat"}
        wait_for_beats(deployed, ["beat"])
        wait_until(deployed, lambda: broker.llen(deployed.queue) == 1, 30, "the message", 0.05)
        message = broker.lindex(deployed.queue, 0)
        assert message is not None

        # Given the first delivery running on worker1 (a run of a minute)
        first_pid = start_worker(deployed, "worker1", [deployed.queue], sleep=60)
        wait_until(deployed, lambda: len(starts(deployed)) == 1, 30, "the first run to start")
        (first,) = starts(deployed)
        assert first["pid"] == first_pid

        # When the very same message is delivered again, to worker2
        start_worker(deployed, "worker2", [deployed.queue, copies], sleep=0.5)
        wait_until(deployed, lambda: "ready." in deployed.log("worker2"), 30, "worker2 to start")
        broker.lpush(copies, message)
        wait_until(
            deployed,
            lambda: "lease was taken over" in deployed.log("worker2"),
            20,
            "worker2 to skip the second delivery",
        )
        # Then it does not run again while the first runs
        assert len(starts(deployed)) == 1, "the second delivery ran"

        # When worker1 is killed mid-run, before its lease expires
        killed_at = time.time()
        deployed.must_live.discard("worker1")
        deployed.kill("worker1", signal.SIGKILL)
        assert killed_at < first["at"] + LEASE - 1, "the lease expired before the kill"

        # Then the occurrence runs once more, after the first run's lease, and is committed
        wait_until(
            deployed,
            lambda: (
                any(e.get("phase") == "end" for e in deployed.events())
                and client.pyncette.get_task_state(fault_slow, "slow-1") is None
            ),
            LEASE + 30,
            "the occurrence to run again",
        )
        events = [e for e in deployed.events() if e["task"] == TASK]
        sent = sent_by(deployed, "beat", TASK)
    broker.close()

    runs = [e for e in events if e.get("phase") != "end"]
    assert len(runs) == 2, f"runs: {runs}"
    second = runs[1]
    assert second["pid"] != first_pid
    assert second["at"] >= first["at"] + LEASE - 0.5, "ran again before the first run's lease"
    assert second["lease"] != first["lease"], "the second run is not from beat's new message"
    assert [e["pid"] for e in events if e.get("phase") == "end"] == [second["pid"]]
    assert sent == 2, f"beat sent {sent} messages: the first, then one after the kill"
