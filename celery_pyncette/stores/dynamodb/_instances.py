"""Instances on DynamoDB: upserts, and reading a task partition by sort key.

An upsert is one ``UpdateItem`` that writes spec, arguments and next run and clears the lease,
conditioned (unless forced) on the instance being new, unlocked, or under an expired lease; it
also clears a quarantine (a repair) and then forgets its registry entry; one that keeps the next
run of an unchanged spec takes two conditional ``UpdateItem`` calls (see :func:`upsert`). A
partition is read by ``Query`` pages on the table's key, consistently.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from celery_pyncette.errors import CorruptRecordError, StoreError, TaskLockedError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, spec_text
from celery_pyncette.stores.dynamodb import _quarantine as quarantines
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._codec import decode_item, time_attribute
from celery_pyncette.stores.dynamodb._items import SK, RefusedError, expression, number

#: Rounds of "replace, else keep" an upsert with ``keep_next_run`` tries while other writers
#: change the spec under it, before it gives up with :class:`StoreError`.
KEEP_ATTEMPTS = 5
#: The condition of an unforced upsert: a new instance, an unlocked one, or an expired lease.
_UNLOCKED = "(attribute_not_exists(#pk) OR attribute_not_exists(#until) OR #until <= :now)"


def upsert(
    store: Table, record: InstanceRecord, now: datetime, force: bool, keep_next_run: bool = False
) -> datetime:
    """``Store.upsert`` on ``store`` (its times checked); the next run the item now has.

    With ``keep_next_run`` two conditional writes take turns, each deciding on the item as it is
    when it is written: "replace, if new, of another spec, or quarantined", else "keep the next
    run, if of this spec and healthy". A concurrent write that changes the spec in between fails
    the second condition and the round starts again.
    """
    values: dict[str, Any] = {
        ":spec": {"S": spec_text(record.spec)},
        ":args": {"S": json.dumps(dict(record.args))},
        ":next": number(record.next_run),
    }
    lock = None if force else _UNLOCKED
    if not force:
        values[":now"] = number(now)
    if not keep_next_run:
        try:
            _replace(store, record, lock, values)
        except _OtherError:  # only the lock check can refuse this one
            raise TaskLockedError(f"{record.key} is locked by a running execution") from None
        return record.next_run
    # "Healthy": not quarantined, and a next run that is a number (one to keep, and to copy into
    # the ready_at index, whose key is a number).
    other = (
        "(attribute_not_exists(#spec) OR #spec <> :spec OR attribute_exists(#qsince)"
        " OR NOT attribute_type(#next, :number))"
    )
    same = "#spec = :spec AND attribute_not_exists(#qsince) AND attribute_type(#next, :number)"
    values[":number"] = {"S": "N"}
    kept_values = {name: value for name, value in values.items() if name != ":next"}
    for _ in range(KEEP_ATTEMPTS):
        try:
            _replace(store, record, _both(other, lock), values)
        except _OtherError:
            pass
        else:
            return record.next_run
        try:
            new = store._update(
                record.key,
                "SET #args = :args, #ready = #next REMOVE #until, #lease, #by",
                _both(same, lock),
                kept_values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ).get("Attributes", {})
        except RefusedError as refused:
            _raise_if_locked(record, refused.item, values)
            continue
        kept = time_attribute(new, "next_run")
        if kept is not None:
            return kept
    raise StoreError(f"{record.key}: its spec kept changing under the upsert; try again")


class _OtherError(Exception):
    """The replacing write was refused only because the item holds this spec, healthy."""


def _replace(store: Table, record: InstanceRecord, condition: str | None, values: Any) -> None:
    """Write spec, args and next run and clear the lease (and a quarantine); ``TaskLockedError``
    when the lock refused it, :class:`_OtherError` when the rest of ``condition`` did."""
    extra: dict[str, Any] = {"ReturnValues": "UPDATED_OLD"}
    if condition is not None:
        extra["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    try:
        old = store._update(
            record.key,
            "SET #spec = :spec, #args = :args, #next = :next, #ready = :next "
            "REMOVE #until, #lease, #by, #qreason, #qsince",
            condition,
            values,
            **extra,
        ).get("Attributes", {})
    except RefusedError as refused:
        _raise_if_locked(record, refused.item, values)
        raise _OtherError from None
    if quarantines.SINCE in old:
        quarantines.forget(store, record.key)  # repaired


def _raise_if_locked(
    record: InstanceRecord, item: Mapping[str, Any] | None, values: Mapping[str, Any]
) -> None:
    """Raise ``TaskLockedError`` when the lock check (``:now`` in ``values``: not forced) is what
    refused a write of ``item``. A lock expiry that is not a number counts as a lock."""
    now = values.get(":now")
    if now is None or item is None or "locked_until" not in item:
        return
    until = item["locked_until"].get("N")
    if until is None or Decimal(until) > Decimal(now["N"]):
        raise TaskLockedError(f"{record.key} is locked until {until}")


def _both(condition: str, lock: str | None) -> str:
    return condition if lock is None else f"{condition} AND {lock}"


def query_partition(
    store: Table, pid: str, limit: int | None, after: str | None, **extra: Any
) -> list[dict[str, Any]]:
    """Pages of one partition by sort key, ``> after``, until ``limit`` items or the end."""
    condition = "#pk = :pk" if after is None else "#pk = :pk AND #sk > :after"
    values: dict[str, Any] = {":pk": {"S": pid}}
    if after is not None:
        values[":after"] = {"S": after}
    pages: list[dict[str, Any]] = []
    seen = 0
    start: dict[str, Any] | None = None
    while limit is None or seen < limit:
        params: dict[str, Any] = {
            "KeyConditionExpression": condition,
            **expression(condition),
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
            **extra,
        }
        if limit is not None:
            params["Limit"] = limit - seen
        if start is not None:
            params["ExclusiveStartKey"] = start
        page = store._call("query", **params)
        pages.append(page)
        seen += int(page.get("Count", 0))
        start = page.get("LastEvaluatedKey")
        if start is None:
            break
    return pages


def list_instances(
    store: Table, task: str, partition: int, limit: int, after: str | None
) -> list[InstanceRecord]:
    """``Store.list_instances`` on ``store`` (its limit checked)."""
    pages = store._query_partition(store._partition_id(task, partition), limit, after)
    records = []
    for item in (item for page in pages for item in page.get("Items", [])):
        with contextlib.suppress(CorruptRecordError):  # left out: see list_quarantined
            records.append(decode_item(InstanceKey(task, partition, item[SK]["S"]), item))
    return records


def count_instances(store: Table, task: str, partition: int) -> int:
    """``Store.count_instances`` on ``store``: ``Select=COUNT`` pages."""
    pid = store._partition_id(task, partition)
    pages = store._query_partition(pid, None, None, Select="COUNT")
    return sum(int(page.get("Count", 0)) for page in pages)
