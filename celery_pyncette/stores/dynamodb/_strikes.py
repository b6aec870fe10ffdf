"""Strikes on DynamoDB: one item per strike in the namespace's strikes partition.

Partition ``[namespace, "#strikes"]``: each strike's sort key is the SHA-256 of its id (64 hex
digits), its item holds the id (``strike``) and, when it has one, its ``reason`` (strikes stored
before reasons existed have none); the item ``marker`` holds a counter that every add or remove
moves (the strikes marker, a cache key).
"""

from __future__ import annotations

import hashlib
import json

from celery_pyncette.stores._checks import check_strike_reason
from celery_pyncette.stores.base import Strike, strike_from_id, strike_id
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._items import PK, SK, expression

_MARKER = "marker"  # sort key of the strikes marker item; strike items use 64 hex digits


def _strikes_pid(store: Table) -> str:
    return json.dumps([store.namespace, "#strikes"], ensure_ascii=False)


def _strike_key(store: Table, sort_key: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": _strikes_pid(store)}, SK: {"S": sort_key}}


def _move_marker(store: Table) -> None:
    update = "ADD #v :one"
    store._call(
        "update_item",
        Key=_strike_key(store, _MARKER),
        UpdateExpression=update,
        **expression(update),
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def _sort_key(strike: Strike) -> str:
    return hashlib.sha256(strike_id(strike).encode()).hexdigest()


def add_strike(store: Table, strike: Strike) -> None:
    """``Store.add_strike`` on ``store``: the item is replaced whole, so is its reason."""
    check_strike_reason(strike.reason)
    item = _strike_key(store, _sort_key(strike))
    item["strike"] = {"S": strike_id(strike)}
    if strike.reason is not None:
        item["reason"] = {"S": strike.reason}
    store._call("put_item", subject=f"strike {strike}", Item=item)
    _move_marker(store)


def remove_strike(store: Table, strike: Strike) -> bool:
    """``Store.remove_strike`` on ``store``."""
    key = _strike_key(store, _sort_key(strike))
    response = store._call("delete_item", Key=key, ReturnValues="ALL_OLD")
    _move_marker(store)
    return "Attributes" in response


def list_strikes(store: Table) -> list[Strike]:
    """``Store.list_strikes`` on ``store``."""
    return [
        strike_from_id(item["strike"]["S"], item.get("reason", {}).get("S"))
        for page in store._query_partition(_strikes_pid(store), None, None)
        for item in page.get("Items", [])
        if item[SK]["S"] != _MARKER
    ]


def strikes_marker(store: Table) -> str:
    """``Store.strikes_marker`` on ``store``."""
    item = store._projected_item(_strike_key(store, _MARKER), "#v") or {}
    return str(item.get("version", {}).get("N", "0"))
