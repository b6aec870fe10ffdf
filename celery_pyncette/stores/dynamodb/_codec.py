"""Decoding DynamoDB items into records, attribute by attribute.

An item whose attributes cannot be decoded fails only itself: :func:`decode_item` raises
:class:`~celery_pyncette.errors.CorruptRecordError` naming the first bad attribute, and the store
quarantines the item (see ``_quarantine.py``) or leaves it out of a listing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from celery_pyncette.stores.dynamodb._items import EPOCH


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
            locked_until=time_attribute(item, "locked_until"),
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


def time_attribute(item: Mapping[str, Any], name: str) -> datetime | None:
    digits = _value(item, name, "N")
    if digits is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(Decimal(digits).scaleb(6)))
    except (ArithmeticError, InvalidOperation, OverflowError, ValueError):
        raise _UndecodableError(f"{name} is not a time: {digits[:40]!r}") from None


def _last_run(item: Mapping[str, Any]) -> datetime | None:
    """The last run is informational: one that cannot be read reads as none (never run)."""
    try:
        return time_attribute(item, "last_run_at")
    except _UndecodableError:
        return None


def _required_time(item: Mapping[str, Any], name: str) -> datetime:
    moment = time_attribute(item, name)
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
