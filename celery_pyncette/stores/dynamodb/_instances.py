"""Instances on DynamoDB: upserts, and reading a task partition by sort key.

An upsert is one ``UpdateItem`` that writes spec, arguments and next run and clears the lease,
conditioned (unless forced) on the instance being new, unlocked, or under an expired lease; it
also clears a quarantine (a repair) and then forgets its registry entry. A partition is read by
``Query`` pages on the table's key, consistently.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from celery_pyncette.errors import CorruptRecordError, TaskLockedError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.dynamodb import _quarantine as quarantines
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._codec import decode_item
from celery_pyncette.stores.dynamodb._items import SK, RefusedError, expression, number


def upsert(store: Table, record: InstanceRecord, now: datetime, force: bool) -> None:
    """``Store.upsert`` on ``store`` (its times checked)."""
    values: dict[str, Any] = {
        ":spec": {"S": json.dumps(dict(record.spec))},
        ":args": {"S": json.dumps(dict(record.args))},
        ":next": number(record.next_run),
    }
    condition, extra = None, {"ReturnValues": "UPDATED_OLD"}
    if not force:  # a new instance, an unlocked one, or one whose lease has expired
        condition = "attribute_not_exists(#pk) OR attribute_not_exists(#until) OR #until <= :now"
        values[":now"] = number(now)
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
        until = (refused.item or {}).get("locked_until")
        raise TaskLockedError(f"{record.key} is locked until {until}") from None
    if quarantines.SINCE in old:
        quarantines.forget(store, record.key)  # repaired


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
