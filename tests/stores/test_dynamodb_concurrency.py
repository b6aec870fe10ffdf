"""Conditional writes racing for real: claimers in separate processes on one DynamoDB partition.

The emulator (dynalite) serves requests concurrently and applies each conditional write
atomically, as DynamoDB does; the first test checks that of the emulator itself, so that the
second one -- processes with clients of their own claiming the same partition at once -- tests the
store's claims, not a server that takes one request at a time.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.dynamodb import DynamoDBStore
from tests.support.servers.dynalite import (
    REGION,
    admin_client,
    aws_environment,
    dynamodb_endpoint,
    store_url,
)

pytestmark = [pytest.mark.server, pytest.mark.timeout(90)]

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def endpoint() -> Iterator[str]:
    url = dynamodb_endpoint()
    with aws_environment():
        yield url


@pytest.fixture
def store(endpoint: str) -> Iterator[DynamoDBStore]:
    table = f"pyncette-{uuid.uuid4().hex[:12]}"
    created = DynamoDBStore(store_url(endpoint, table), namespace="ns")
    created.setup()
    yield created
    created.close()
    admin_client(endpoint).delete_table(TableName=table)


def test_the_emulator_lets_exactly_one_of_racing_conditional_writes_win(
    store: DynamoDBStore, endpoint: str
) -> None:
    # Given 6 clients of their own, each writing the same 100 new items at once
    clients, items = 6, 100
    config = Config(max_pool_connections=4, retries={"mode": "standard"})
    made = [
        boto3.session.Session().client(
            "dynamodb", region_name=REGION, endpoint_url=endpoint, config=config
        )
        for _ in range(clients)
    ]
    barrier = threading.Barrier(clients)
    wins: list[list[str]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def race(slot: int) -> None:
        try:
            barrier.wait(20)
            for n in range(items):
                try:  # the claim's shape: a write conditioned on what no rival has done yet
                    made[slot].put_item(
                        TableName=store.table,
                        Item={"partition_id": {"S": "race"}, "task_id": {"S": f"i{n:03d}"}},
                        ConditionExpression="attribute_not_exists(partition_id)",
                    )
                    wins[slot].append(f"i{n:03d}")
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then each item was won exactly once, and by more than one client (they raced)
    assert errors == []
    counts = Counter(name for won in wins for name in won)
    assert sorted(counts) == [f"i{n:03d}" for n in range(items)]
    assert set(counts.values()) == {1}
    assert sum(1 for won in wins if won) > 1


def test_a_client_that_dies_in_the_middle_of_a_request_leaves_the_emulator_serving(
    store: DynamoDBStore, endpoint: str
) -> None:
    # Given a client that sends half a request, then resets its connection (as a SIGKILLed beat)
    port = int(endpoint.rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
            b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n\r\n{"
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    # Then the emulator still answers the others
    assert store.table in admin_client(endpoint).list_tables()["TableNames"]
    assert store.get(InstanceKey("t", 0, "missing")) is None


CLAIMER_SCRIPT = """
import json, sys, time
from datetime import datetime, timedelta, timezone
from celery_pyncette.stores.dynamodb import DynamoDBStore
from celery_pyncette.stores.dynamodb._items import RefusedError as _RefusedError

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


class Counting(DynamoDBStore):
    lost = 0

    def _update(self, *args, **kwargs):
        try:
            return super()._update(*args, **kwargs)
        except _RefusedError:
            self.lost += 1
            raise


store = Counting(sys.argv[1], namespace="ns")
store._connect()
print("ready", flush=True)
sys.stdin.readline()  # all claimers start together
names, first, last = [], None, None
while batch := store.claim_due("t", 0, T0, 10, timedelta(minutes=5), sys.argv[2]):
    now = time.time()
    first, last = first or now, now
    names.extend(r.key.instance for r in batch)
print(json.dumps({"names": names, "lost": store.lost, "first": first, "last": last}), flush=True)
"""


def test_claimers_in_separate_processes_claim_each_instance_of_a_partition_exactly_once(
    store: DynamoDBStore,
) -> None:
    # Given 300 due instances in one partition and 4 processes, each with its own client
    instances, processes = 300, 4
    store.upsert_many(
        [InstanceRecord(InstanceKey("t", 0, f"i{n:04d}"), T0) for n in range(instances)], T0
    )
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER_SCRIPT, store.url, f"beat{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        for claimer in claimers:
            assert claimer.stdout is not None
            assert claimer.stdout.readline() == "ready\n", claimer.communicate(timeout=30)[1]

        # When they all claim the partition until it is empty, at once
        for claimer in claimers:
            assert claimer.stdin is not None
            claimer.stdin.write("go\n")
            claimer.stdin.flush()
        outcomes = []
        for claimer in claimers:
            out, err = claimer.communicate(timeout=60)
            assert claimer.returncode == 0, err[-2000:]
            outcomes.append(json.loads(out))
    finally:
        for claimer in claimers:
            if claimer.poll() is None:
                claimer.kill()
                claimer.wait()

    # Then every instance was claimed exactly once ...
    counts = Counter(name for outcome in outcomes for name in outcome["names"])
    assert len(counts) == instances
    assert set(counts.values()) == {1}
    # ... while the claimers raced: all of them claimed, at overlapping times, and conditional
    # writes lost to a rival were refused
    assert all(outcome["names"] for outcome in outcomes)
    assert max(o["first"] for o in outcomes) < min(o["last"] for o in outcomes)
    assert sum(outcome["lost"] for outcome in outcomes) > 0
    assert store.claim_due("t", 0, T0 + timedelta(minutes=1), 10, timedelta(minutes=5), "b") == []
