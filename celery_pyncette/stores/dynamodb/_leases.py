"""The writes conditioned on a lease: commit, unlock, and lease extension (a heartbeat, or the
worker's token swap).

Each is one conditional write on the lease token. botocore may send a write again when its reply
was lost: commit and unlock mark their write with a fresh ``release_id``, and a refusal that finds
that marker on the item was the first attempt's work, so it counts as done.

An extension sets ``ready_at`` to ``max(next_run, until)``, which an update expression cannot
compute, so the usual case (``next_run <= until``, the instance being due) is tried first and the
other one only when that condition fails with the lease still held. With ``new_lease`` the token is
replaced in the same write; a retried swap then finds ``new_lease`` in place and counts as done.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from celery_pyncette.errors import LeaseLostError
from celery_pyncette.stores._history import Run, settled_next_run
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, LeaseRef
from celery_pyncette.stores.dynamodb._api import Table
from celery_pyncette.stores.dynamodb._items import RefusedError, expression, holds, number
from celery_pyncette.stores.dynamodb._runs import count_update, history_update


def commit(
    store: Table,
    key: InstanceKey,
    lease: str,
    next_run: datetime | None,
    now: datetime,
    status: str,
    run: Run | None = None,
    history_size: int = 0,
    max_runs: int | None = None,
) -> None:
    """``Store.commit`` on ``store``; :class:`LeaseLostError` when the lease is lost.

    One UpdateItem (or DeleteItem) writes the outcome, the count and the history. With
    ``max_runs``, the update is conditioned on the count being short of it; when that condition
    alone refuses it, this is the last run, and the instance is ended by a second request.
    """
    if max_runs == 1 and next_run is not None:  # no count is short of 1: the first run is last
        final = settled_next_run(key.instance == STATIC_INSTANCE, next_run, 1, 1)
        return commit(store, key, lease, final, now, status, run, history_size)
    condition = "#lease = :lease"
    if max_runs is not None and next_run is not None:
        condition += " AND (attribute_not_exists(#runs) OR #runs < :last)"
    release = uuid.uuid4().hex  # marks this call's write, should botocore have to retry it
    try:
        if next_run is None:
            store._call(
                "delete_item",
                Key=store._key(key),
                ConditionExpression="#lease = :lease",
                **expression("#lease = :lease"),
                ExpressionAttributeValues={":lease": {"S": lease}},
            )
            return None
        _committed(
            store,
            key,
            (lease, release),
            next_run,
            now,
            status,
            run,
            history_size,
            condition,
            max_runs,
        )
    except RefusedError as refused:
        if holds(refused.item, "release_id", release):  # our write, retried
            return None
        if not holds(refused.item, "lease", lease) or max_runs is None:
            raise LeaseLostError(f"lease {lease} of {key} is lost") from None
        # The count reached max_runs - 1 before this run: this one is the last.
        final = settled_next_run(key.instance == STATIC_INSTANCE, next_run, max_runs, max_runs)
        commit(store, key, lease, final, now, status, run, history_size)


def _committed(
    store: Table,
    key: InstanceKey,
    tokens: tuple[str, str],
    next_run: datetime,
    now: datetime,
    status: str,
    run: Run | None,
    history_size: int,
    condition: str,
    max_runs: int | None,
) -> None:
    lease, release = tokens
    slots, slot_values = history_update(run, history_size)
    count, count_values = count_update()
    values = {
        ":next": number(next_run),
        ":now": number(now),
        ":status": {"S": status},
        ":lease": {"S": lease},
        ":release": {"S": release},
        **slot_values,
        **count_values,
    }
    if max_runs is not None:
        values[":last"] = {"N": str(max_runs - 1)}
    store._update(
        key,
        "SET #next = :next, #ready = :next, #last = :now, #status = :status, "
        f"#release = :release{', ' + slots if slots else ''} ADD {count} "
        "REMOVE #until, #lease, #by",
        condition,
        values,
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def unlock(
    store: Table, key: InstanceKey, lease: str, run: Run | None = None, history_size: int = 0
) -> None:
    """``Store.unlock`` on ``store``; :class:`LeaseLostError` when the lease is lost."""
    release = uuid.uuid4().hex  # marks this call's write, should botocore have to retry it
    slots, slot_values = history_update(run, history_size)
    try:
        store._update(
            key,
            f"SET #ready = #next, #release = :release{', ' + slots if slots else ''} "
            "REMOVE #until, #lease, #by",
            "#lease = :lease",
            {":lease": {"S": lease}, ":release": {"S": release}, **slot_values},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except RefusedError as refused:
        if not holds(refused.item, "release_id", release):  # else our write, retried
            raise LeaseLostError(f"lease {lease} of {key} is lost") from None


def extend_lease(
    store: Table,
    key: InstanceKey,
    lease: str,
    until: datetime,
    new_lease: str | None,
) -> None:
    """``Store.extend_lease`` on ``store``; :class:`LeaseLostError` when the lease is lost."""
    token = new_lease or lease
    values = {":lease": {"S": lease}, ":until": number(until), ":token": {"S": token}}
    swap = "#until = :until, #lease = :token"
    attempts = (
        (f"SET {swap}, #ready = :until", "#lease = :lease AND #next <= :until"),
        (f"SET {swap}, #ready = #next", "#lease = :lease AND #next > :until"),
    )
    for update, condition in attempts:
        try:
            store._update(
                key, update, condition, values, ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
            return
        except RefusedError as refused:
            if new_lease and holds(refused.item, "lease", new_lease):
                return  # our own swap, sent again by botocore
            if not holds(refused.item, "lease", lease):
                raise LeaseLostError(f"lease {lease} of {key} is lost") from None
    raise LeaseLostError(f"lease {lease} of {key} is lost")


def extend_leases(store: Table, items: Sequence[LeaseRef], until: datetime) -> list[InstanceKey]:
    """``Store.extend_leases`` on ``store``: one conditional ``UpdateItem`` per item (DynamoDB has
    no batched conditional update), sent ``poll_concurrency`` at a time on the store's pool, so a
    published batch costs about the time of one request per ``poll_concurrency`` items."""

    def extend_one(item: LeaseRef) -> InstanceKey | None:
        try:
            extend_lease(store, item[0], item[1], until, None)
        except LeaseLostError:
            return item[0]
        return None

    outcomes = list((store._poller().map if len(items) > 1 else map)(extend_one, items))
    return [key for key in outcomes if key is not None]
