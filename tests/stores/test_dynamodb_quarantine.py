"""DynamoDB store: how a quarantine is kept (the item leaves the sparse ``ready_at`` index) and
the registry that lists quarantined items, which a listing checks against the items.

Runs on whatever emulator ``tests/backends/dynamodb.py`` starts; the raw reads and writes go
through a plain boto3 client, as another program's would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Quarantined
from celery_pyncette.stores.dynamodb import DynamoDBStore
from tests.backends import dynamodb

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def record(name: str) -> InstanceRecord:
    return InstanceRecord(InstanceKey("t", 0, name), T0, {"interval": 60}, {})


@pytest.fixture
def store() -> Iterator[DynamoDBStore]:
    with dynamodb.make_store(f"t{uuid.uuid4().hex[:10]}") as created:
        assert isinstance(created, DynamoDBStore)
        yield created


def raw_client(store: DynamoDBStore) -> Any:
    return boto3.session.Session().client(
        "dynamodb",
        region_name=store.settings.region or "us-east-1",
        endpoint_url=store.settings.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def raw_item(store: DynamoDBStore, name: str) -> dict[str, Any]:
    client = raw_client(store)
    try:
        reply = client.get_item(
            TableName=store.table, Key=store._key(InstanceKey("t", 0, name)), ConsistentRead=True
        )
    finally:
        client.close()
    item: dict[str, Any] = reply["Item"]
    return item


def test_a_quarantined_item_leaves_the_ready_index_and_keeps_its_data(
    store: DynamoDBStore,
) -> None:
    store.upsert(record("a"), T0)
    (claimed,) = store.claim_due("t", 0, T0, 10, LEASE, "b1")

    assert store.quarantine(claimed.key, claimed.lease, "cannot compute", T0) is True

    item = raw_item(store, "a")
    assert "ready_at" not in item  # the LSI is sparse: the claim query cannot meet it
    assert "lease" not in item
    assert "locked_until" not in item
    assert item["quarantine_reason"] == {"S": "cannot compute"}
    assert item["spec"] == {"S": '{"interval":60}'}  # canonical JSON text (spec_text)

    store.upsert(record("a"), T0)

    item = raw_item(store, "a")
    assert "quarantined_at" not in item
    assert "quarantine_reason" not in item
    assert "ready_at" in item


def test_a_registry_entry_whose_item_was_repaired_behind_the_store_is_dropped(
    store: DynamoDBStore,
) -> None:
    for name in ("a", "b"):
        store.upsert(record(name), T0)
        store.quarantine(InstanceKey("t", 0, name), None, f"bad {name}", T0)
    # a writer that knows nothing of quarantines (an older version) repairs "a"
    client = raw_client(store)
    try:
        client.update_item(
            TableName=store.table,
            Key=store._key(InstanceKey("t", 0, "a")),
            UpdateExpression="SET ready_at = next_run REMOVE quarantined_at, quarantine_reason",
        )
    finally:
        client.close()

    assert store.list_quarantined() == [Quarantined(InstanceKey("t", 0, "b"), "bad b", T0)]
    registry = store._query_partition(f'["{store.namespace}", "#quarantine"]', None, None)
    assert sum(len(page.get("Items", [])) for page in registry) == 1  # the stale entry is gone
