"""The DynamoDB store for the contract suite, on dynalite (tests/dynamodb_server.py), over HTTP.

Each test gets its own table, created by the store's ``setup()`` and deleted at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery_pyncette.stores.base import Store
from celery_pyncette.stores.dynamodb import DynamoDBStore
from tests.dynamodb_server import admin_client, aws_environment, dynamodb_endpoint, store_url

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
