"""How the DynamoDB store reads and writes item attributes, and how a refused write comes back.

Shared by :mod:`celery_pyncette.stores.dynamodb` and the lease writes of
:mod:`celery_pyncette.stores._dynamodb_leases`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def number(moment: datetime) -> dict[str, str]:
    """A DynamoDB number: epoch seconds with exactly the datetime's microseconds."""
    micros = (moment - _EPOCH) // _MICROSECOND
    return {"N": format(Decimal(micros).scaleb(-6), "f")}


def time_of(value: Mapping[str, str]) -> datetime:
    """The inverse of :func:`number`."""
    return _EPOCH + timedelta(microseconds=int(Decimal(value["N"]).scaleb(6)))


def holds(item: Mapping[str, Any] | None, name: str, lease: str) -> bool:
    """Whether ``item``'s string attribute ``name`` is ``lease``."""
    return item is not None and item.get(name, {}).get("S") == lease


class RefusedError(Exception):
    """An expected refusal: a failed condition, or an error code the caller asked to handle."""

    def __init__(self, code: str, item: Mapping[str, Any] | None):
        super().__init__(code)
        self.code = code
        self.item = item
