"""Quarantine on the DynamoDB store: decoding items one by one, and the quarantine registry.

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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.stores._dynamodb_items import RefusedError, number
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Quarantined


class DynamoDBStore(Protocol):
    """What these functions use of :class:`celery_pyncette.stores.dynamodb.DynamoDBStore`."""

    namespace: str

    def _call(
        self, operation: str, *, subject: str = "", expect: tuple[str, ...] = (), **params: Any
    ) -> dict[str, Any]: ...

    def _update(
        self,
        key: InstanceKey,
        update: str,
        condition: str | None,
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]: ...

    def _key(self, key: InstanceKey) -> dict[str, dict[str, str]]: ...

    def _projected_item(self, key: dict[str, Any], projection: str) -> dict[str, Any] | None: ...

    def _query_partition(
        self, pid: str, limit: int | None, after: str | None, **extra: Any
    ) -> list[dict[str, Any]]: ...

    def _poller(self) -> ThreadPoolExecutor: ...


#: Longest reason kept (longer ones are cut).
REASON_CHARS = 1000
#: The attributes of a quarantined item (and of a registry entry).
REASON, SINCE = "quarantine_reason", "quarantined_at"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_READ_CHUNK = 100  # items read (in parallel) before the listing checks its limit


class _UndecodableError(Exception):
    """One attribute cannot be decoded; the message names it."""


def decode_item(key: InstanceKey, item: Mapping[str, Any]) -> InstanceRecord:
    """The record of an instance item; :class:`CorruptRecordError` naming the first attribute
    that is missing, of another type, not JSON or not a time."""
    try:
        return InstanceRecord(
            key=key,
            next_run=_required_time(item, "next_run"),
            spec=_object(item, "spec"),
            args=_object(item, "args"),
            locked_until=_time(item, "locked_until"),
            lease=_string(item, "lease"),
            locked_by=_string(item, "locked_by"),
            last_run_at=_last_run(item),
            last_status=_string(item, "last_status"),
        )
    except _UndecodableError as exc:
        raise CorruptRecordError(key, str(exc)) from None


def _value(item: Mapping[str, Any], name: str, kind: str) -> Any:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping) or kind not in value:
        found = next(iter(value), "?") if isinstance(value, Mapping) else "?"
        raise _UndecodableError(f"{name} is of type {found}, not {kind}")
    return value[kind]


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    digits = _value(item, name, "N")
    if digits is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(Decimal(digits).scaleb(6)))
    except (ArithmeticError, InvalidOperation, OverflowError, ValueError):
        raise _UndecodableError(f"{name} is not a time: {digits[:40]!r}") from None


def _last_run(item: Mapping[str, Any]) -> datetime | None:
    """The last run is informational: one that cannot be read reads as none (never run)."""
    try:
        return _time(item, "last_run_at")
    except _UndecodableError:
        return None


def _required_time(item: Mapping[str, Any], name: str) -> datetime:
    moment = _time(item, name)
    if moment is None:
        raise _UndecodableError(f"{name} is missing")
    return moment


def _object(item: Mapping[str, Any], name: str) -> Any:
    document = _value(item, name, "S")
    if document is None:
        raise _UndecodableError(f"{name} is missing")
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise _UndecodableError(f"{name} is not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise _UndecodableError(f"{name} is not a JSON object (a {type(parsed).__name__})")
    return parsed


def _string(item: Mapping[str, Any], name: str) -> str | None:
    value = _value(item, name, "S")
    return None if value is None else str(value)


# --- the registry ------------------------------------------------------------------------------


def _registry_pk(store: DynamoDBStore) -> dict[str, str]:
    return {"S": json.dumps([store.namespace, "#quarantine"], ensure_ascii=False)}


def _entry_key(store: DynamoDBStore, key: InstanceKey) -> dict[str, dict[str, str]]:
    ident = json.dumps([key.task, key.partition, key.instance], ensure_ascii=False)
    digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()
    return {"partition_id": _registry_pk(store), "task_id": {"S": digest}}


def quarantine(
    store: DynamoDBStore, key: InstanceKey, lease: str | None, reason: str, now: datetime
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


def forget(store: DynamoDBStore, key: InstanceKey) -> None:
    """Remove the registry entry of an item that is no longer quarantined."""
    store._call("delete_item", Key=_entry_key(store, key))


def list_quarantined(store: DynamoDBStore, task: str | None, limit: int) -> list[Quarantined]:
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
            since = _time(item, SINCE) or _EPOCH
            found.append(Quarantined(key, str(item.get(REASON, {}).get("S", "")), since))
            if len(found) == limit:
                return found
    return found


def _read_items(store: DynamoDBStore, keys: list[InstanceKey]) -> dict[InstanceKey, Any]:
    """The quarantine attributes of ``keys``' items: strongly consistent ``GetItem`` calls,
    ``poll_concurrency`` at a time (``GetItem`` needs no permission the store lacked before)."""

    def read(key: InstanceKey) -> Any:
        return store._projected_item(store._key(key), "#qreason, #qsince")

    items = list(store._poller().map(read, keys))
    return {key: item for key, item in zip(keys, items, strict=True) if item is not None}
