"""The DynamoDB store for the contract suite, on dynalite (tests/support/servers), over HTTP.

Each test gets its own table, created by the store's ``setup()`` and deleted at teardown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager

import boto3

from celery_pyncette.stores.base import InstanceKey, Store, Strike, strike_id
from celery_pyncette.stores.dynamodb import DynamoDBStore
from tests.support.servers.dynalite import (
    admin_client,
    aws_environment,
    dynamodb_endpoint,
    store_url,
)

NAME = "dynamodb"


@contextmanager
def make_store(namespace: str) -> Iterator[Store]:
    """A fresh, empty, set-up store on a table of its own."""
    endpoint = dynamodb_endpoint()
    table = f"pyncette-{namespace}"
    with aws_environment():
        store = DynamoDBStore(store_url(endpoint, table), namespace=namespace)
        store.setup()
        try:
            yield store
        finally:
            store.close()
            admin_client(endpoint).delete_table(TableName=table)


@contextmanager
def make_second_client(store: Store) -> Iterator[Store]:
    """Another client of the same table and namespace, as another process would have."""
    other = DynamoDBStore(store.url, namespace=store.namespace)
    try:
        yield other
    finally:
        other.close()


#: Attribute -> garbage the claim quarantines (a type other than the store writes, or text that
#: is not JSON).
CORRUPTIONS: dict[str, dict[str, str]] = {
    "spec": {"N": "1"},
    "args": {"S": "not json {"},
    "next_run": {"S": "soon"},
}
#: Attribute -> garbage that get/list_instances refuse and a claim overwrites.
HEALED_BY_CLAIM = {"locked_until": {"S": "never"}}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED = {"last_run_at": {"S": "yesterday"}}


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """Write the garbage of ``field`` into the item with a plain boto3 UpdateItem."""
    assert isinstance(store, DynamoDBStore)
    garbage = {**CORRUPTIONS, **HEALED_BY_CLAIM, **TOLERATED}[field]
    client = boto3.session.Session().client(
        "dynamodb",
        region_name=store.settings.region or "us-east-1",
        endpoint_url=store.settings.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        client.update_item(
            TableName=store.table,
            Key=store._key(key),
            UpdateExpression="SET #f = :v",
            ConditionExpression="attribute_exists(partition_id)",
            ExpressionAttributeNames={"#f": field},
            ExpressionAttributeValues={":v": garbage},
        )
    finally:
        client.close()


def write_legacy_strike(store: Store, strike: Strike) -> None:
    """PutItem ``strike`` with the attributes a version before reasons wrote (no ``reason``)."""
    assert isinstance(store, DynamoDBStore)
    assert strike.reason is None
    ident = strike_id(strike)
    client = boto3.session.Session().client(
        "dynamodb",
        region_name=store.settings.region or "us-east-1",
        endpoint_url=store.settings.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        client.put_item(
            TableName=store.table,
            Item={
                "partition_id": {
                    "S": json.dumps([store.namespace, "#strikes"], ensure_ascii=False)
                },
                "task_id": {"S": hashlib.sha256(ident.encode()).hexdigest()},
                "strike": {"S": ident},
            },
        )
    finally:
        client.close()
