"""Concurrency limits that hold across every beat and worker, kept in the store.

A limit is a pool of *slots*: ``limit`` records of a reserved task per limited group (a task, or
a task and one value of an argument). Beat claims a slot for each occurrence it sends, with the
same lease as the occurrence; the worker releases it when the execution ends. A slot held by a
killed worker frees itself when its lease expires. An occurrence that gets no slot stays due and
is tried again on the next tick. Slots are ordinary instance records (laid out in
:mod:`celery_pyncette._records`), so every store supports them through the contract's claim and
unlock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette._records import slot_pool, slot_records
from celery_pyncette.errors import LeaseLostError, StoreError
from celery_pyncette.stores.base import LeaseRef, Store

logger = logging.getLogger("celery_pyncette.concurrency")

_MISSING = object()


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """At most ``limit`` running occurrences per task, or per value of ``parameter``."""

    limit: int
    parameter: str | None = None

    @classmethod
    def parse(cls, value: Any) -> ConcurrencyLimit | None:
        """From the decorator option: ``N`` (per task) or ``("argument", N)``; ValueError if bad."""
        if value is None:
            return None
        parameter: Any = None
        limit = value
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"concurrency_limit must be N or (argument, N), got {value!r}")
            parameter, limit = value
            if not isinstance(parameter, str) or not parameter:
                raise ValueError(f"concurrency_limit argument must be a name, got {parameter!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"concurrency_limit must be a positive integer, got {limit!r}")
        return cls(limit, parameter)

    def pool(self, task: str, args: dict[str, Any]) -> str | None:
        """The slot pool an occurrence with ``args`` draws from; None when it is not limited."""
        if self.parameter is None:
            identity: list[Any] = [task]
        else:
            value = args.get(self.parameter, _MISSING)
            if value is _MISSING:
                return None
            identity = [task, self.parameter, value]
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode())
        return slot_pool(digest.hexdigest()[:24])


class Slots:
    """Claims and releases slots for one process (beat)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._ready: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def acquire(
        self, store: Store, pool: str, limit: int, now: datetime, lease: timedelta
    ) -> LeaseRef | None:
        """Claim a free slot of ``pool`` until ``now + lease``; None when all are taken."""
        self._ensure(store, pool, limit, now)
        claimed = store.claim_due(pool, 0, now, 1, lease, self.owner)
        if not claimed:
            return None
        return claimed[0].ref

    def _ensure(self, store: Store, pool: str, limit: int, now: datetime) -> None:
        with self._lock:
            if (pool, limit) in self._ready:
                return
        records = slot_records(pool, limit)
        wanted = {r.key for r in records}
        existing = {r.key for r in store.list_instances(pool, 0, limit + 1000)}
        missing = [r for r in records if r.key not in existing]
        if missing:
            store.upsert_many(missing, now)
        for extra in existing - wanted:  # the limit was lowered in code
            store.delete(extra)
        with self._lock:
            self._ready.add((pool, limit))


def release(store: Store, slot: LeaseRef) -> None:
    """Free a slot. Never raises: a slot whose lease expired (and was perhaps claimed again) is
    left alone, and one the store cannot free now frees itself when its lease expires."""
    try:
        store.unlock(slot[0], slot[1])
    except LeaseLostError:
        pass
    except StoreError:
        logger.warning("could not free concurrency slot %s; it frees at its lease expiry", slot[0])
