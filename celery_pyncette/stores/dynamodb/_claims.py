"""Claims and polls on DynamoDB: the ``ready_at`` index query, then one conditional write per
candidate.

A claim queries the index for ``ready_at <= now`` oldest first and takes each candidate with an
``UpdateItem`` conditioned on ``ready_at <= now``; a claim lost to another beat fails that condition
and is skipped (the range is re-read a bounded number of times, then the query pages on: it never
spins on one page). An item whose attributes cannot be decoded is quarantined under the lease just
taken. A poll probes each partition's index with ``Limit=1``, ``poll_concurrency`` at once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.stores.base import (
    ClaimedBatch,
    ClaimedRecord,
    InstanceKey,
    Quarantined,
    claimed,
)
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._codec import decode_item
from celery_pyncette.stores.dynamodb._items import (
    INDEX,
    SK,
    RefusedError,
    expression,
    holds,
    number,
)


def due_page(
    store: Table, pid: str, now: datetime, size: int, start: dict[str, Any] | None
) -> dict[str, Any]:
    """One page of the index: keys of instances with ``ready_at <= now``, oldest first."""
    condition = "#pk = :pk AND #ready <= :now"
    params: dict[str, Any] = {
        "IndexName": INDEX,
        "KeyConditionExpression": condition,
        **expression(condition),
        "ExpressionAttributeValues": {":pk": {"S": pid}, ":now": number(now)},
        "ScanIndexForward": True,
        "ConsistentRead": True,
        "Limit": size,
    }
    if start is not None:
        params["ExclusiveStartKey"] = start
    return store._call("query", **params)


def due_partitions(
    store: Table, groups: Sequence[tuple[str, int]], now: datetime
) -> set[tuple[str, int]]:
    """``Store.due_partitions`` on ``store``: exactly the groups holding a due instance."""
    wanted = list(dict.fromkeys(groups))
    if not wanted:
        return set()

    def probe(group: tuple[str, int]) -> bool:
        page = store._due_page(store._partition_id(*group), now, 1, None)
        return bool(page.get("Items"))

    if len(wanted) == 1:
        return {wanted[0]} if probe(wanted[0]) else set()
    flags = list(store._poller().map(probe, wanted))
    return {group for group, due in zip(wanted, flags, strict=True) if due}


def claim(
    store: Table,
    task: str,
    partition: int,
    now: datetime,
    limit: int,
    lease_duration: timedelta,
    owner: str,
) -> ClaimedBatch:
    """``Store.claim`` on ``store`` (its arguments checked)."""
    pid = store._partition_id(task, partition)
    until = number(now + lease_duration)
    update = "SET #until = :until, #ready = :until, #lease = :lease, #by = :owner"
    condition = "attribute_exists(#pk) AND #ready <= :now"
    leased: list[ClaimedRecord] = []
    bad: list[Quarantined] = []
    start: dict[str, Any] | None = None
    contended, rereads = False, 0
    while len(leased) + len(bad) < limit:
        page = store._due_page(pid, now, min(max(store.page_factor * limit, 16), 1000), start)
        names = [item[SK]["S"] for item in page.get("Items", [])]
        stale = False
        for position in range(len(names)):
            if contended:  # others claim this range too: pick at random, not in their wake
                other = random.randrange(position, len(names))
                names[position], names[other] = names[other], names[position]
            key = InstanceKey(task, partition, names[position])
            lease = uuid.uuid4().hex
            values = {
                ":until": until,
                ":now": number(now),
                ":lease": {"S": lease},
                ":owner": {"S": owner},
            }
            try:
                item = store._update(
                    key,
                    update,
                    condition,
                    values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
            except RefusedError as refused:
                if holds(refused.item, "lease", lease):
                    item = refused.item  # ours: botocore retried a write whose reply was lost
                else:
                    # Lost to another claimer (or deleted) since the query: not an error. The
                    # rest of the page is likely stale too: read the same range again (claimed
                    # items have left it), a bounded number of times; then page on.
                    contended = True
                    if rereads < limit:
                        rereads += 1
                        stale = True
                        break
                    continue
            try:
                leased.append(claimed(decode_item(key, item)))
            except CorruptRecordError as exc:
                if store.quarantine(key, lease, exc.reason, now):
                    bad.append(Quarantined(key, exc.reason, now))
            if len(leased) + len(bad) == limit:
                break
        if stale:
            continue
        start = page.get("LastEvaluatedKey")
        if start is None:
            break
    return ClaimedBatch(now, leased, bad)
