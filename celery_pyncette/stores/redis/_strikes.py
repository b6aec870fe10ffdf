"""Strikes in the Redis store: a set of rules, a hash of their reasons and a change marker, written
together by ``strike.lua`` and read together by ``list_strikes.lua``."""

from __future__ import annotations

import secrets

from celery_pyncette.stores._checks import check_strike_reason
from celery_pyncette.stores.base import Strike, strike_from_id, strike_id
from celery_pyncette.stores.redis._connection import Connection
from celery_pyncette.stores.redis._layout import text

#: The strike set, the strikes marker and the reasons hash (``_layout.strikes_keys``).
Keys = tuple[bytes, bytes, bytes]


def _strike(connection: Connection, keys: Keys, operation: str, strike: Strike) -> bool:
    seed = secrets.randbits(48)
    args = [operation, strike_id(strike), seed, strike.reason or ""]
    return bool(connection.script("strike", list(keys), args, f"{operation} a strike"))


def add(connection: Connection, keys: Keys, strike: Strike) -> None:
    """``Store.add_strike``: the same rule added again replaces its reason."""
    check_strike_reason(strike.reason)
    _strike(connection, keys, "add", strike)


def remove(connection: Connection, keys: Keys, strike: Strike) -> bool:
    """``Store.remove_strike``: whether the rule was there."""
    return _strike(connection, keys, "remove", strike)


def listed(connection: Connection, keys: Keys) -> list[Strike]:
    """``Store.list_strikes``, sorted by rule."""
    strikes, _, reasons_key = keys
    members, pairs = connection.script("list_strikes", [strikes, reasons_key], [], "list strikes")
    reasons = {text(pairs[i]): text(pairs[i + 1]) for i in range(0, len(pairs), 2)}
    return [
        strike_from_id(ident, reasons.get(ident))
        for ident in sorted(text(member) for member in members)
    ]


def marker(connection: Connection, keys: Keys) -> str:
    """``Store.strikes_marker``: the change marker (``"0"`` before the first change)."""
    with connection.errors("read the strikes marker"):
        value = connection.client().get(keys[1])
    return "0" if value is None else text(value)
