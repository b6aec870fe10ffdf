"""Lease extension on DynamoDB: a heartbeat, or the worker's token swap, as conditional updates.

One ``UpdateItem`` conditioned on the lease: ``ready_at`` becomes ``max(next_run, until)``, which
an update expression cannot compute, so the usual case (``next_run <= until``, the instance being
due) is tried first and the other one only when that condition fails with the lease still held.
With ``new_lease`` the token is replaced in the same write. botocore may send a write again when
its reply was lost: a retried swap then finds ``new_lease`` in place (the first attempt's work)
and counts as done.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from celery_pyncette.errors import LeaseLostError
from celery_pyncette.stores._dynamodb_items import RefusedError, holds, number
from celery_pyncette.stores.base import InstanceKey, LeaseRef


class DynamoDBStore(Protocol):
    """What these functions use of :class:`celery_pyncette.stores.dynamodb.DynamoDBStore`."""

    def _update(
        self,
        key: InstanceKey,
        update: str,
        condition: str | None,
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]: ...

    def _poller(self) -> ThreadPoolExecutor: ...

    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None: ...


def extend_lease(
    store: DynamoDBStore,
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


def extend_leases(
    store: DynamoDBStore, items: Sequence[LeaseRef], until: datetime
) -> list[InstanceKey]:
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
