"""DynamoDBStore on the DynamoDB emulator (dynalite): what the contract suite does not pin down.

Table layout, key encoding, table creation and checks, large items, paging across DynamoDB's result
pages, instances due at the same moment (an emulator index bug), claims lost between the query and
the write, claimers in separate clients, fork safety.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Strike
from celery_pyncette.stores.dynamodb import DynamoDBStore
from tests.support.claimers import claim_concurrently
from tests.support.servers.dynalite import (
    admin_client,
    aws_environment,
    dynamodb_endpoint,
    store_url,
)

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def record(name: str, next_run: datetime = T0, task: str = "t", **args: Any) -> InstanceRecord:
    return InstanceRecord(InstanceKey(task, 0, name), next_run, {"interval": 60}, args)


@pytest.fixture
def endpoint() -> Iterator[str]:
    url = dynamodb_endpoint()
    with aws_environment():
        yield url


@pytest.fixture
def table(endpoint: str) -> Iterator[str]:
    """A fresh table name; the table, if a test created it, is deleted afterwards."""
    name = f"pyncette-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        admin_client(endpoint).delete_table(TableName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise


@pytest.fixture
def store(endpoint: str, table: str) -> Iterator[DynamoDBStore]:
    created = DynamoDBStore(store_url(endpoint, table), namespace="ns")
    created.setup()
    yield created
    created.close()


# --- the table ----------------------------------------------------------------------------------


def test_setup_creates_the_documented_table(store: DynamoDBStore, endpoint: str) -> None:
    table = admin_client(endpoint).describe_table(TableName=store.table)["Table"]

    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == [
        {"AttributeName": "partition_id", "KeyType": "HASH"},
        {"AttributeName": "task_id", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (index,) = table["LocalSecondaryIndexes"]
    assert index["IndexName"] == "ready_at"
    assert index["KeySchema"][1] == {"AttributeName": "ready_at", "KeyType": "RANGE"}
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"partition_id": "S", "task_id": "S", "ready_at": "N"}


def test_setup_is_idempotent_across_concurrent_beats(endpoint: str, table: str) -> None:
    stores = [DynamoDBStore(store_url(endpoint, table)) for _ in range(3)]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def set_up(store: DynamoDBStore) -> None:
        try:
            barrier.wait(10)
            store.setup()
            store.setup()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=set_up, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    description = admin_client(endpoint).describe_table(TableName=table)["Table"]
    assert description["TableStatus"] == "ACTIVE"


def test_skip_table_create_reports_a_missing_table_by_name(endpoint: str, table: str) -> None:
    store = DynamoDBStore(store_url(endpoint, table, skip_table_create="1"))

    with pytest.raises(StoreError, match=rf"{table}.*does not exist"):
        store.setup()

    with pytest.raises(ClientError, match=r"not found|ResourceNotFound"):
        admin_client(endpoint).describe_table(TableName=table)


def test_skip_table_create_accepts_a_table_created_beforehand(
    store: DynamoDBStore, endpoint: str
) -> None:
    checker = DynamoDBStore(store_url(endpoint, store.table), skip_table_create=True)

    checker.setup()
    checker.close()


def test_a_table_with_another_schema_is_refused(endpoint: str, table: str) -> None:
    admin_client(endpoint).create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store = DynamoDBStore(store_url(endpoint, table))

    with pytest.raises(StoreError, match=r"another schema.*key schema.*local secondary index"):
        store.setup()


def test_an_operation_on_a_table_never_set_up_names_the_table(endpoint: str, table: str) -> None:
    store = DynamoDBStore(store_url(endpoint, table))

    with pytest.raises(StoreError, match=rf"{table}.*does not exist"):
        store.get(InstanceKey("t", 0, "i"))


# --- items --------------------------------------------------------------------------------------


def test_an_instance_is_one_item_with_an_exact_numeric_ready_at(
    store: DynamoDBStore, endpoint: str
) -> None:
    store.upsert(record("i1", user="bill"), T0)

    key = {"partition_id": {"S": json.dumps(["ns", "t", 0])}, "task_id": {"S": "i1"}}
    item = admin_client(endpoint).get_item(TableName=store.table, Key=key)["Item"]

    assert item["ready_at"] == {"N": "1893499200.123456"}
    assert item["next_run"] == item["ready_at"]
    assert json.loads(item["args"]["S"]) == {"user": "bill"}
    assert "lease" not in item


def test_a_partition_key_is_readable_json_of_namespace_task_and_partition(
    store: DynamoDBStore, endpoint: str
) -> None:
    store.upsert(record("i1", task="rapport.été"), T0)

    items = admin_client(endpoint).scan(TableName=store.table)["Items"]

    assert [item["partition_id"]["S"] for item in items] == ['["ns", "rapport.été", 0]']


def test_namespaces_and_task_names_with_separators_never_collide(endpoint: str, table: str) -> None:
    # Joined with "#", both would be "a#b#c#0"; joined with ",", the third would collide too.
    pairs = [("a#b", "c"), ("a", "b#c"), ("a", 'b",0,"c')]
    stores = [DynamoDBStore(store_url(endpoint, table), namespace=ns) for ns, _ in pairs]
    stores[0].setup()
    for store, (_, task) in zip(stores, pairs, strict=True):
        store.upsert(record("same", task=task, owner=task), T0)

    for store, (_, task) in zip(stores, pairs, strict=True):
        (listed,) = store.list_instances(task, 0, 10)
        assert listed.args == {"owner": task}
        (claimed,) = store.claim_due(task, 0, T0, 10, LEASE, "b1")
        assert claimed.args == {"owner": task}


def test_an_item_over_400_kb_is_refused_with_a_clear_store_error(store: DynamoDBStore) -> None:
    big = record("big", blob="x" * 250_000).with_changes(spec={"padding": "y" * 200_000})

    with pytest.raises(StoreError, match="400 KB") as caught:
        store.upsert(big, T0)

    assert "big" in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)


def test_a_bulk_upsert_repeating_a_key_keeps_its_last_record(store: DynamoDBStore) -> None:
    batch = [record(f"i{i}", n=i) for i in range(5)] + [record("i2", n="last")]

    assert store.upsert_many(batch, T0) == []

    state = store.get(InstanceKey("t", 0, "i2"))
    assert state is not None
    assert state.args == {"n": "last"}
    assert store.count_instances("t", 0) == 5


def test_a_bulk_upsert_reports_a_store_error_of_any_item(store: DynamoDBStore) -> None:
    batch = [record(f"i{i}") for i in range(8)]
    batch[5] = record("huge", blob="x" * 450_000)

    with pytest.raises(StoreError, match=r"huge.*too large"):
        store.upsert_many(batch, T0)


def test_keeping_the_timer_decides_on_the_spec_stored_when_each_write_lands(
    store: DynamoDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replacing write is refused (same spec); another writer then changes the spec before
    the keeping write lands: that write is refused too, and the next round replaces."""
    same, other = {"interval": 60}, {"interval": 120}
    store.upsert(InstanceRecord(InstanceKey("t", 0, "a"), T0, same, {}), T0)
    real = store._update
    writes: list[str] = []

    def racing(key: InstanceKey, update: str, *rest: Any, **options: Any) -> dict[str, Any]:
        writes.append(update.split(" ")[1])
        if update.startswith("SET #args = :args, #ready = #next") and len(writes) == 2:
            store.upsert(InstanceRecord(key, T0 + timedelta(hours=2), other, {}), T0)
        return real(key, update, *rest, **options)

    monkeypatch.setattr(store, "_update", racing)
    kept = store.upsert(
        InstanceRecord(InstanceKey("t", 0, "a"), T0 + timedelta(hours=1), same, {"n": 1}),
        T0,
        keep_next_run=True,
    )

    # replace (refused: same spec), keep (refused: the spec changed), the other writer's write,
    # replace (done)
    assert writes == ["#spec", "#args", "#spec", "#spec"]
    assert kept == T0 + timedelta(hours=1)
    state = store.get(InstanceKey("t", 0, "a"))
    assert state is not None
    assert (state.next_run, dict(state.spec), dict(state.args)) == (kept, same, {"n": 1})


def test_keeping_the_timer_gives_up_with_a_store_error_when_the_spec_never_settles(
    store: DynamoDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [{"interval": 60}, {"interval": 120}]
    store.upsert(InstanceRecord(InstanceKey("t", 0, "a"), T0, specs[0], {}), T0)
    real = store._update
    rounds = {"n": 0}

    def flapping(key: InstanceKey, update: str, *rest: Any, **options: Any) -> dict[str, Any]:
        # Before each write of ours, another writer flips the stored spec to the one that makes
        # this write's condition fail.
        if update.startswith("SET #spec") and rest and rest[0] and "<>" in str(rest[0]):
            rounds["n"] += 1
            real(key, "SET #spec = :spec", None, {":spec": {"S": '{"interval":60.0}'}})
        elif update.startswith("SET #args"):
            real(key, "SET #spec = :spec", None, {":spec": {"S": '{"interval":120}'}})
        return real(key, update, *rest, **options)

    monkeypatch.setattr(store, "_update", flapping)
    with pytest.raises(StoreError, match="kept changing"):
        store.upsert(
            InstanceRecord(InstanceKey("t", 0, "a"), T0 + timedelta(hours=1), {"interval": 60.0}),
            T0,
            keep_next_run=True,
        )
    assert rounds["n"] == 5


def test_listing_follows_dynamodb_result_pages(store: DynamoDBStore) -> None:
    # DynamoDB returns at most 1 MB per query: 12 items of ~150 KB need two pages or more.
    names = [f"n{i:02d}" for i in range(12)]
    for name in names:
        store.upsert(record(name, blob="x" * 150_000), T0)

    listed = store.list_instances("t", 0, 12)
    after = store.list_instances("t", 0, 5, after="n03")

    assert [r.key.instance for r in listed] == names
    assert [r.key.instance for r in after] == names[4:9]
    assert store.count_instances("t", 0) == 12


def test_strikes_live_apart_from_instances(store: DynamoDBStore) -> None:
    store.add_strike(Strike("t", "note", "==", "z" * 5000))  # longer than a sort key may be
    store.upsert(record("i1"), T0)

    assert [s.value for s in store.list_strikes()] == ["z" * 5000]
    assert store.count_instances("t", 0) == 1
    assert store.strikes_marker() == "1"


# --- claims -------------------------------------------------------------------------------------


class RivalledStore(DynamoDBStore):
    """Lets a rival beat claim candidates between this store's index query and its writes."""

    rival: DynamoDBStore
    steal = 0  # how many of each page's candidates the rival claims first (-1: all of them)
    pages = 0

    def _due_page(
        self, pid: str, now: datetime, size: int, start: dict[str, Any] | None
    ) -> dict[str, Any]:
        page = super()._due_page(pid, now, size, start)
        self.pages += 1
        count = len(page.get("Items", [])) if self.steal < 0 else self.steal
        if count:  # the rival takes the oldest due instances: the head of this page
            self.rival.claim_due("t", 0, now, count, LEASE, "rival")
        return page


@pytest.fixture
def rivalled(store: DynamoDBStore) -> RivalledStore:
    rivalled = RivalledStore(store.url, namespace=store.namespace)
    rivalled.rival = store
    return rivalled


#: Two instance names that dynalite 4.0.0 would file under one ``ready_at`` index entry in partition
#: ``["ns", "t", 0]`` when both are due at the same moment: it tells apart index entries with equal
#: sort keys by the first 6 hex digits of an MD5 of the table key, and these two share them
#: (``tests/dynalite/serve.js`` appends the whole table key; see there).
TIED = ("i4660", "i5237")


def dynalite_tie_breaker(partition_id: str, instance: str) -> str:
    """What unpatched dynalite 4.0.0 appends to an index key to tell equal sort keys apart."""
    digest = hashlib.md5(b"Outliers" + partition_id.encode() + instance.encode())
    return digest.hexdigest()[:6]


def test_instances_due_at_the_same_moment_are_all_claimed(store: DynamoDBStore) -> None:
    pid = store._partition_id("t", 0)
    assert len({dynalite_tie_breaker(pid, name) for name in TIED}) == 1  # the case this pins down
    store.upsert_many([record(name) for name in TIED], T0)

    claimed = store.claim_due("t", 0, T0, 10, LEASE, "b1")

    assert sorted(r.key.instance for r in claimed) == list(TIED)
    assert store.due_partitions([("t", 0)], T0) == set()


def test_a_claim_lost_after_the_query_is_skipped_and_the_batch_still_fills(
    store: DynamoDBStore, rivalled: RivalledStore
) -> None:
    store.upsert_many([record(f"i{i:02d}", T0 - timedelta(seconds=40 - i)) for i in range(40)], T0)
    rivalled.steal = 3

    claimed = rivalled.claim_due("t", 0, T0, 5, LEASE, "b1")

    names = {r.key.instance for r in claimed}
    assert len(names) == 5
    assert not {"i00", "i01", "i02"} & names
    for got in claimed:
        state = store.get(got.key)
        assert state is not None
        assert state.lease == got.lease


def test_a_claim_under_total_contention_ends_without_rereading_forever(
    store: DynamoDBStore, rivalled: RivalledStore
) -> None:
    store.upsert_many([record(f"i{i:02d}") for i in range(60)], T0)
    rivalled.steal = -1

    assert rivalled.claim_due("t", 0, T0, 5, LEASE, "b1") == []
    assert rivalled.pages <= 1 + 5  # the first read, then at most `limit` re-reads


def test_claimers_in_separate_clients_never_share_an_instance(
    store: DynamoDBStore, endpoint: str
) -> None:
    store.upsert_many([record(f"i{i:03d}") for i in range(200)], T0)
    claimers = [DynamoDBStore(store.url, namespace=store.namespace) for _ in range(4)]

    def claim_all(slot: int) -> list[InstanceRecord]:
        taken: list[InstanceRecord] = []
        while batch := claimers[slot].claim_due("t", 0, T0, 10, LEASE, f"b{slot}"):
            taken.extend(batch)
        return taken

    counts = claim_concurrently(claim_all, timeout=50)

    assert len(counts) == 200
    assert max(counts.values()) == 1
    for claimer in claimers:
        claimer.close()


def test_a_lease_that_is_not_positive_is_refused(store: DynamoDBStore) -> None:
    with pytest.raises(ValueError, match="lease_duration"):
        store.claim_due("t", 0, T0, 10, timedelta(0), "b1")


def test_a_lease_extended_to_before_the_next_run_keeps_the_instance_due_then(
    store: DynamoDBStore,
) -> None:
    store.upsert(record("i1"), T0)
    (got,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")

    store.extend_lease(got.key, got.lease or "", T0 - timedelta(seconds=1))

    state = store.get(got.key)
    assert state is not None
    assert state.locked_until == T0 - timedelta(seconds=1)
    assert state.lease == got.lease
    assert [r.key for r in store.claim_due("t", 0, T0, 10, LEASE, "b2")] == [got.key]


# --- processes ----------------------------------------------------------------------------------


FORKING_SCRIPT = """
import os, sys
from datetime import datetime, timezone
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.dynamodb import DynamoDBStore

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
store = DynamoDBStore(sys.argv[1], namespace="ns")


def busy(name):
    # Both processes at once: a connection shared across the fork would mix their replies.
    for n in range(10):
        store.upsert(InstanceRecord(InstanceKey("t", 0, name), T0, args={"n": n}), T0)
        state = store.get(InstanceKey("t", 0, name))
        if state is None or state.args != {"n": n}:
            raise SystemExit(f"{name}: wrong reply {state}")


busy("parent")
parent_client = store._connect()  # (compare the clients, not connections)
pid = os.fork()
if pid == 0:
    code = 1
    try:
        store.after_fork()
        busy("child")
        code = 0 if store._connect() is not parent_client else 3
    finally:
        os._exit(code)
busy("parent")
if store._connect() is not parent_client:
    raise SystemExit("the parent lost its client")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_client_and_the_parent_keeps_its_own(
    store: DynamoDBStore,
) -> None:
    # Forked in a single-threaded subprocess: this test process may run threads (xdist).
    done = subprocess.run(
        [sys.executable, "-c", FORKING_SCRIPT, store.url],
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode()[-2000:]
    names = [r.key.instance for r in store.list_instances("t", 0, 10)]
    assert names == ["child", "parent"]
