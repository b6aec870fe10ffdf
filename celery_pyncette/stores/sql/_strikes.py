"""Strikes in the SQL store: one row per rule (its id a digest of the rule) with its reason, and a
change counter in ``{namespace}_meta`` that every add and remove bumps in the same transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from celery_pyncette.stores._checks import check_strike_reason
from celery_pyncette.stores.base import Strike, strike_from_id, strike_id
from celery_pyncette.stores.sql._dialects import Dialect
from celery_pyncette.stores.sql._schema import Schema

T = TypeVar("T")


class Tables(Protocol):
    """What these functions use of the SQL store: its transaction runner, schema and dialect."""

    _schema: Schema
    _dialect: Dialect

    def _run(self, work: Callable[[Connection], T], *, write: bool, single: bool = ...) -> T: ...


#: The strikes change counter in ``{namespace}_meta``.
STRIKES_COUNTER = "strikes"


def _digest(ident: str) -> str:
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()


def add(store: Tables, strike: Strike) -> None:
    """``Store.add_strike``: insert the rule, then set its reason (the same rule added again
    replaces the reason)."""
    check_strike_reason(strike.reason)
    ident = strike_id(strike)
    table = store._schema.strikes
    digest = _digest(ident)
    set_reason = update(table).where(table.c.id == digest).values(reason=strike.reason)

    def work(conn: Connection) -> None:
        row = {"id": digest, "strike": ident, "reason": strike.reason}
        store._dialect.insert_missing(conn, table, row)
        conn.execute(set_reason)
        store._dialect.bump(conn, store._schema.meta, STRIKES_COUNTER)

    store._run(work, write=True)


def remove(store: Tables, strike: Strike) -> bool:
    """``Store.remove_strike``: whether the rule was there."""
    table = store._schema.strikes
    stmt = delete(table).where(table.c.id == _digest(strike_id(strike)))

    def work(conn: Connection) -> bool:
        existed = conn.execute(stmt).rowcount > 0
        store._dialect.bump(conn, store._schema.meta, STRIKES_COUNTER)
        return existed

    return store._run(work, write=True)


def listed(store: Tables) -> list[Strike]:
    """``Store.list_strikes``, in a stable order."""
    table = store._schema.strikes
    stmt = select(table.c.strike, table.c.reason).order_by(table.c.id)
    rows = store._run(lambda conn: conn.execute(stmt).all(), write=False)
    return [strike_from_id(ident, reason) for ident, reason in rows]


def marker(store: Tables) -> str:
    """``Store.strikes_marker``: the change counter."""
    meta = store._schema.meta
    stmt = select(meta.c.value).where(meta.c.name == STRIKES_COUNTER)
    value = store._run(lambda conn: conn.execute(stmt).scalar(), write=False)
    return str(value or 0)
