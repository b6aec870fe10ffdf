"""What the fault tests share: stores, a client of the deployed project, and log readers.

Every test owns its queue, store namespace, proxies and side channel, so pytest-xdist can run the
fault tests side by side (the 30-second outages overlap instead of adding up).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from amqp.exceptions import ChannelError
from celery import Celery
from kombu import Connection

from celery_pyncette import ExecutionMode, Pyncette
from celery_pyncette.stores.base import InstanceKey, Store
from tests.backends import dynamodb, postgres
from tests.backends import redis as redis_backend
from tests.e2e.harness import Deployment, Event, wait_until

#: The stores every fault scenario runs on.
STORES: dict[str, ModuleType] = {"redis": redis_backend, "postgres": postgres}
#: Stores some scenarios run on besides: DynamoDB (on dynalite) in the several-beats test.
BACKENDS: dict[str, ModuleType] = {**STORES, "dynamodb": dynamodb}
#: Partitions of the ``e2e.fault_*`` tasks (``E2E_PARTITIONS`` of tests/e2e/proj.py).
PARTITIONS = 8
#: ``pyncette_batch_size``'s default: the most one beat claims from a partition at once.
BATCH_SIZE = 100
TASKS = {"alo": "e2e.fault_alo", "amo": "e2e.fault_amo"}

_STARTED = re.compile(r"celery-pyncette: store .*, beat (\S+:\d+:[0-9a-f]{8})")
_SENT = re.compile(r"sent (\d+) occurrence\(s\) of (\S+)")


@dataclass
class FaultStore:
    """A fresh namespace on one store server, and a client store on it (not proxied)."""

    name: str
    url: str
    namespace: str
    store: Store

    def via(self, port: int) -> str:
        """This store's URL through a proxy listening on ``port``."""
        return with_port(self.url, port)


@contextmanager
def fault_store(name: str) -> Iterator[FaultStore]:
    with BACKENDS[name].make_store(f"f{uuid.uuid4().hex[:10]}") as store:
        yield FaultStore(name, store.url, store.namespace, store)


def with_port(url: str, port: int) -> str:
    """``url`` pointing at ``127.0.0.1:port`` (user and password kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Claim:
    """A lease as the store holds it."""

    lease: str
    locked_until: datetime
    partition: int = 0


class Client:
    """The application side: schedules instances of the deployed project's fault tasks."""

    def __init__(self, url: str, namespace: str) -> None:
        app = Celery("faults-client", set_as_current=False)
        app.conf.update(pyncette_url=url, pyncette_namespace=namespace)
        self.pyncette = Pyncette(app)

        @self.pyncette.partitioned_task(name=TASKS["alo"], partition_count=PARTITIONS)
        def fault_alo(context: object) -> None: ...

        @self.pyncette.partitioned_task(
            name=TASKS["amo"],
            partition_count=PARTITIONS,
            execution_mode=ExecutionMode.AT_MOST_ONCE,
        )
        def fault_amo(context: object) -> None: ...

        self.tasks = {"alo": fault_alo, "amo": fault_amo}
        self.app = app

    def stored(self, mode: str) -> int:
        """How many instances of the mode's task the store still holds."""
        store = self.pyncette.store
        return sum(store.count_instances(TASKS[mode], p) for p in range(PARTITIONS))

    def claims_of(self, mode: str, owner: str) -> dict[str, Claim]:
        """The leases ``owner`` holds on instances of the mode's task, by instance."""
        store = self.pyncette.store
        held: dict[str, Claim] = {}
        for partition in range(PARTITIONS):
            after = None
            while page := store.list_instances(TASKS[mode], partition, 1000, after):
                after = page[-1].key.instance
                for r in page:
                    if r.locked_by == owner and r.lease and r.locked_until:
                        held[r.key.instance] = Claim(r.lease, r.locked_until, partition)
        return held

    def still_held(self, mode: str, claims: dict[str, Claim]) -> set[str]:
        """Which of ``claims`` the store still holds unchanged (one read per instance: cheap
        while the store still holds thousands of other instances)."""
        store = self.pyncette.store
        held = set()
        for name, claim in claims.items():
            record = store.get(InstanceKey(TASKS[mode], claim.partition, name))
            if record and (record.lease, record.locked_until) == (claim.lease, claim.locked_until):
                held.add(name)
        return held

    def close(self) -> None:
        self.pyncette.close()
        self.app.close()


@contextmanager
def client_of(url: str, namespace: str) -> Iterator[Client]:
    client = Client(url, namespace)
    try:
        yield client
    finally:
        client.close()


def beat_owner(deployed: Deployment, name: str) -> str | None:
    """The lease owner a beat logged at start-up, once it has."""
    found = _STARTED.search(deployed.log(name))
    return found.group(1) if found else None


def wait_for_beats(deployed: Deployment, names: list[str], timeout: float = 30) -> dict[str, str]:
    """Wait until each beat has started its scheduler; return their lease owners."""
    wait_until(
        deployed,
        lambda: all(beat_owner(deployed, n) for n in names),
        timeout,
        f"beats {names} to start",
    )
    return {name: beat_owner(deployed, name) or "" for name in names}


def wait_for_log(deployed: Deployment, name: str, text: str, timeout: float) -> float:
    return wait_until(deployed, lambda: text in deployed.log(name), timeout, f"{text!r} in {name}")


def sent_by(deployed: Deployment, name: str, task: str) -> int:
    """How many occurrences of ``task`` a beat logged as sent."""
    return sum(int(n) for n, t in _SENT.findall(deployed.log(name)) if t == task)


_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def tracebacks(deployed: Deployment, name: str) -> int:
    """How many tracebacks a process logged (a chain of causes counts once)."""
    count, previous = 0, ""
    for line in deployed.log(name).splitlines():
        if line.startswith("Traceback (most recent call last)") and not previous.startswith(
            _CHAINED
        ):
            count += 1
        if line.strip():
            previous = line
    return count


def runs(events: list[Event], task: str) -> Counter[str]:
    """Executions per instance of ``task``."""
    return Counter(e["instance"] for e in events if e["task"] == task)


def queue_size(broker: str, queue: str) -> int:
    """Messages waiting in ``queue``."""
    with Connection(broker, connect_timeout=5) as connection:
        try:
            declared: Any = connection.default_channel.queue_declare(queue, passive=True)
        except ChannelError as exc:
            if (
                str(exc.reply_code) == "404"
            ):  # Redis keeps no key for an empty list: "no such queue" = empty
                return 0
            raise
        return int(declared.message_count)


def kill_beat(deployed: Deployment, name: str) -> float:
    """SIGKILL one beat; return the monotonic time of the kill."""
    deployed.must_live.discard(name)
    killed_at = time.monotonic()
    deployed.kill(name, signal.SIGKILL)
    return killed_at


def report(test: str, **numbers: Any) -> None:
    """Append the measured numbers of a run to ``$FAULT_REPORT`` (JSON lines), when it is set:
    docs/several-beats.md quotes them."""
    path = os.environ.get("FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": test, **numbers}) + "\n")
