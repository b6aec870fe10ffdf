"""A Redis Sentinel failover while a real beat dispatches from the store.

The store is a private deployment (a primary, a replica and three sentinels); a real ``celery
beat`` and a solo worker run the per-second task through it. ``SENTINEL FAILOVER`` promotes the
replica, or ``kill -9`` of the primary makes them promote it. What replication guarantees, and so
what the test asserts:

* an occurrence whose commit the replica had when it was promoted is not sent again. The test knows
  such commits by a fence: it writes a key and waits (``WAIT 1``) until the replica acknowledges
  it, so every write the primary processed before holds on the replica. The per-second task's
  single instance is claimed again only after its last occurrence is committed, so every occurrence
  followed by an execution recorded before the fence was committed before it;
* occurrences due after the failover are sent, each once: beat finds the new primary by itself.

Writes between the fence and the old primary's demotion may be lost (asynchronous replication): the
occurrences run then may run again after the failover. That is allowed, and documented, not tested.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import pytest
import redis

from tests.e2e.harness import Deployment, start_solo_worker, wait_until
from tests.faults.helpers import report, tracebacks, wait_for_beats
from tests.support.servers import require_server
from tests.support.servers.local_sentinel import private_sentinel

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.server, pytest.mark.timeout(180)]

Deploy = Callable[..., Deployment]
#: The broker: the local Redis, on a database no other test uses (each deployment has its queue).
BROKER = "redis://127.0.0.1:6379/10"
TASK = "e2e.every_second"
#: Seconds after the failover whose occurrences must each run once.
AFTER = range(3, 9)


def occurrences(deployed: Deployment) -> Counter[float]:
    """Executions of the per-second task by scheduled time (epoch seconds)."""
    return Counter(
        datetime.fromisoformat(e["scheduled_at"]).timestamp()
        for e in deployed.events()
        if e["task"] == TASK
    )


@pytest.mark.parametrize("how", ["SENTINEL FAILOVER", "kill -9 the primary"])
def test_beat_finds_the_new_primary_after_a_sentinel_failover_and_goes_on(
    deploy: Deploy, how: str
) -> None:
    require_server("redis", "127.0.0.1", 6379)
    with private_sentinel() as sentinel:
        deployed = deploy(BROKER, sentinel.url(0, socket_timeout="2"), f"f{uuid.uuid4().hex[:10]}",
                          [TASK.split(".")[1]])  # fmt: skip
        start_solo_worker(deployed, "worker")
        deployed.start_beat("beat")
        deployed.must_live = {"worker", "beat"}
        wait_for_beats(deployed, ["beat"])
        wait_until(deployed, lambda: sum(occurrences(deployed).values()) >= 4, 40, "4 runs")

        # Given a fence every write before which the replica holds
        fence = time.time()
        with redis.Redis(port=sentinel.primary().port, socket_timeout=10) as primary:
            primary.set("fence", str(fence))
            assert primary.execute_command("WAIT", 1, 5000) == 1
        before = sorted(
            at
            for at, _ in occurrences(deployed).items()
            if any(
                e["at"] < fence and datetime.fromisoformat(e["scheduled_at"]).timestamp() > at
                for e in deployed.events()
                if e["task"] == TASK
            )
        )
        assert len(before) >= 2

        # When the sentinels fail the primary over
        started = time.time()
        if how == "SENTINEL FAILOVER":
            sentinel.failover()
        else:
            old, new = sentinel.primary(), sentinel.replica()
            old.kill()
            sentinel.wait_switched(old, new)
        switched = time.time()

        # Then beat goes on with the new primary: every occurrence due after it runs once
        due = [float(int(switched) + n) for n in AFTER]
        wait_until(
            deployed,
            lambda: max(occurrences(deployed), default=0) > due[-1] + 1,
            60,
            "the occurrences due after the failover",
        )
        runs = occurrences(deployed)
        resumed = min(at for at in runs if at > switched)
        traced = tracebacks(deployed, "beat")
        deployed.stop_all()  # before the sentinels go: beat's last store call is at its exit

    assert {at: runs[at] for at in due} == dict.fromkeys(due, 1)
    assert traced <= 2, "a traceback storm"
    # ... and nothing committed before the fence ran again
    assert {at: runs[at] for at in before} == dict.fromkeys(before, 1)
    report(
        "Redis Sentinel failover during dispatch",
        how=how,
        failover_seconds=round(switched - started, 1),
        first_run_after_seconds=round(resumed - switched, 1),
        committed_before_fence=len(before),
        repeated=sorted(at for at, count in runs.items() if count > 1),
        tracebacks=traced,
    )
