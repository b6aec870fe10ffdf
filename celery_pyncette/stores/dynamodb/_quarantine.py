"""Quarantine on the DynamoDB store: the quarantined items and their registry.

A quarantined item keeps its data; it loses ``ready_at`` (the sort key of the ``ready_at`` local
secondary index, which is sparse: an item without it is not in the index, so claims and polls no
longer meet it) and its lease, and gets ``quarantine_reason`` and ``quarantined_at``. An upsert
writes ``ready_at`` again and removes both (a repair); a delete removes the item.

DynamoDB cannot list the quarantined items of a whole namespace without scanning the table, so
each quarantine also writes an entry to a registry partition, ``[namespace, "#quarantine"]`` (sort
key: the SHA-256 of the instance key), which :func:`list_quarantined` reads. The registry entry is
written before the item and removed after it, without a transaction (not every DynamoDB
implementation has them): a crash in between leaves an entry for an item that is no longer
quarantined, and listing reads every entry's item again (consistent ``GetItem``), drops such
entries and reports each item's own reason and time.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from celery_pyncette.stores.base import InstanceKey, Quarantined
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._codec import time_attribute
from celery_pyncette.stores.dynamodb._items import EPOCH, RefusedError, number

#: Longest reason kept (longer ones are cut).
REASON_CHARS = 1000
#: The attributes of a quarantined item (and of a registry entry).
REASON, SINCE = "quarantine_reason", "quarantined_at"
_READ_CHUNK = 100  # items read (in parallel) before the listing checks its limit


def _registry_pk(store: Table) -> dict[str, str]:
    return {"S": json.dumps([store.namespace, "#quarantine"], ensure_ascii=False)}


def _entry_key(store: Table, key: InstanceKey) -> dict[str, dict[str, str]]:
    ident = json.dumps([key.task, key.partition, key.instance], ensure_ascii=False)
    digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()
    return {"partition_id": _registry_pk(store), "task_id": {"S": digest}}


def quarantine(
    store: Table, key: InstanceKey, lease: str | None, reason: str, now: datetime
) -> bool:
    """Quarantine one item (with ``lease``: only while it holds it); whether it was."""
    reason = reason[:REASON_CHARS]
    ident = json.dumps([key.task, key.partition, key.instance], ensure_ascii=False)
    entry = {**_entry_key(store, key), "key": {"S": ident}, SINCE: number(now)}
    store._call("put_item", subject=f"quarantine entry of {key}", Item=entry)
    release = uuid.uuid4().hex  # marks this call's write, should botocore have to retry it
    condition = "attribute_exists(#pk)" + ("" if lease is None else " AND #lease = :lease")
    values: dict[str, Any] = {
        ":reason": {"S": reason},
        ":since": number(now),
        ":release": {"S": release},
    }
    if lease is not None:
        values[":lease"] = {"S": lease}
    try:
        store._update(
            key,
            "SET #qreason = :reason, #qsince = :since, #release = :release "
            "REMOVE #ready, #until, #lease, #by",
            condition,
            values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except RefusedError as refused:
        old = refused.item or {}
        if old.get("release_id", {}).get("S") == release:
            return True  # our write, retried
        if SINCE not in old:
            forget(store, key)
        return False
    return True


def forget(store: Table, key: InstanceKey) -> None:
    """Remove the registry entry of an item that is no longer quarantined."""
    store._call("delete_item", Key=_entry_key(store, key))


def list_quarantined(store: Table, task: str | None, limit: int) -> list[Quarantined]:
    """Up to ``limit`` quarantined items (of ``task``), by key: the registry, then each item."""
    if limit <= 0:
        return []
    keys: list[InstanceKey] = []
    for page in store._query_partition(_registry_pk(store)["S"], None, None):
        for entry in page.get("Items", []):
            entry_task, partition, instance = json.loads(entry["key"]["S"])
            if task is None or entry_task == task:
                keys.append(InstanceKey(entry_task, partition, instance))
    keys.sort(key=lambda k: (k.task, k.partition, k.instance))
    found: list[Quarantined] = []
    for start in range(0, len(keys), _READ_CHUNK):
        chunk = keys[start : start + _READ_CHUNK]
        items = _read_items(store, chunk)
        for key in chunk:
            item = items.get(key)
            if item is None or SINCE not in item:
                forget(store, key)  # stale: repaired or deleted after its entry was written
                continue
            since = time_attribute(item, SINCE) or EPOCH
            found.append(Quarantined(key, str(item.get(REASON, {}).get("S", "")), since))
            if len(found) == limit:
                return found
    return found


def _read_items(store: Table, keys: list[InstanceKey]) -> dict[InstanceKey, Any]:
    """The quarantine attributes of ``keys``' items: strongly consistent ``GetItem`` calls,
    ``poll_concurrency`` at a time (``GetItem`` needs no permission the store lacked before)."""

    def read(key: InstanceKey) -> Any:
        return store._projected_item(store._key(key), "#qreason, #qsince")

    items = list(store._poller().map(read, keys))
    return {key: item for key, item in zip(keys, items, strict=True) if item is not None}
