"""The DynamoDB store's table: created by ``setup`` (unless ``skip_table_create``), waited for
until ACTIVE, and checked against the layout the store needs.

Table layout (see ``docs/stores/dynamodb.md``): hash key ``partition_id`` (S), range key
``task_id`` (S), and a local secondary index ``ready_at`` on (``partition_id``, ``ready_at`` (N)),
keys only; billed per request. ``ResourceInUseException`` on create means the table exists
already (another beat may be creating it right now).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._items import INDEX, PK, SK, RefusedError


def setup(store: Table) -> None:
    """``Store.setup`` on ``store``: create the table unless ``skip_table_create``, then wait
    until it is ACTIVE and check its schema."""
    if not store.skip_table_create:
        attributes = [(PK, "S"), (SK, "S"), (INDEX, "N")]
        # ResourceInUse: it exists already (another beat may be creating it right now)
        with contextlib.suppress(RefusedError):
            store._call(
                "create_table",
                expect=("ResourceInUseException",),
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": kind} for name, kind in attributes
                ],
                KeySchema=[
                    {"AttributeName": PK, "KeyType": "HASH"},
                    {"AttributeName": SK, "KeyType": "RANGE"},
                ],
                LocalSecondaryIndexes=[
                    {
                        "IndexName": INDEX,
                        "KeySchema": [
                            {"AttributeName": PK, "KeyType": "HASH"},
                            {"AttributeName": INDEX, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
                BillingMode="PAY_PER_REQUEST",
            )
    _wait_until_active(store)


def _wait_until_active(store: Table) -> None:
    deadline = time.monotonic() + store.table_wait_timeout
    pause = 0.05
    while True:
        try:
            table = store._call("describe_table", expect=("ResourceNotFoundException",))
        except RefusedError:
            raise StoreError(
                f"DynamoDB table {store.table!r} does not exist in region "
                f"{store.settings.region or '(boto3 default)'}; create it (see "
                "docs/stores/dynamodb.md) or drop skip_table_create"
            ) from None
        description = table["Table"]
        status = description.get("TableStatus")
        if status == "ACTIVE":
            _check_schema(store, description)
            return
        if status not in {"CREATING", "UPDATING"}:
            raise StoreError(f"DynamoDB table {store.table!r} is {status}, not ACTIVE")
        if time.monotonic() + pause > deadline:
            raise StoreError(
                f"DynamoDB table {store.table!r} still {status} after "
                f"{store.table_wait_timeout:.0f} s"
            )
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _check_schema(store: Table, description: Mapping[str, Any]) -> None:
    def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    indexes = {
        i["IndexName"]: keys(i["KeySchema"]) for i in description.get("LocalSecondaryIndexes", [])
    }
    problems = []
    if keys(description["KeySchema"]) != [(PK, "HASH"), (SK, "RANGE")]:
        problems.append(f"key schema must be {PK} (hash), {SK} (range)")
    if indexes.get(INDEX) != [(PK, "HASH"), (INDEX, "RANGE")]:
        problems.append(f"a local secondary index {INDEX!r} on ({PK}, {INDEX}) is missing")
    if (types.get(PK), types.get(SK), types.get(INDEX, "N")) != ("S", "S", "N"):
        problems.append(f"{PK} and {SK} must be strings, {INDEX} a number")
    if problems:
        raise StoreError(
            f"DynamoDB table {store.table!r} has another schema: {'; '.join(problems)}"
        )
