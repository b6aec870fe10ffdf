"""The one place that reads the wall clock, so tests and fault injection can move it, and the
store's clock that leases and due times are judged by."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Protocol

from celery_pyncette.errors import StoreError

if TYPE_CHECKING:
    from celery_pyncette.stores.base import Store

logger = logging.getLogger("celery_pyncette.clock")

#: How often a process re-measures its clock's offset from the store's.
CHECK_EVERY = 60.0
#: An offset larger than this is logged.
WARN_OFFSET = timedelta(seconds=1)


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)


class Clock(Protocol):
    """What leases and due times are judged by: :class:`StoreClock`, or a simulation's clock."""

    def now(self) -> datetime:
        """The current time (aware UTC)."""


class StoreClock:
    """This process's clock corrected by its offset from the store server's clock.

    Every beat and worker judges leases and due times by one clock, even when machines' clocks
    disagree: the offset from :meth:`Store.server_time` is measured (half the round trip
    allowed for) on first use and every :data:`CHECK_EVERY` seconds. Stores without a clock
    (SQLite, memory, DynamoDB) leave the local clock as it is.
    """

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store
        self.offset = timedelta(0)
        self._checked_at: float | None = None

    def now(self) -> datetime:
        """The current time by the store's clock (aware UTC)."""
        if self._checked_at is None or time.monotonic() - self._checked_at > CHECK_EVERY:
            self._measure()
        return utcnow() + self.offset

    def _measure(self) -> None:
        self._checked_at = time.monotonic()
        try:
            store = self._store()
            before = utcnow()
            started = time.monotonic()
            server = store.server_time()
            round_trip = time.monotonic() - started
        except StoreError:
            logger.warning("could not read the store clock; keeping offset %s", self.offset)
            return
        if server is None:
            return
        offset = server - (before + timedelta(seconds=round_trip / 2))
        if abs(offset) > WARN_OFFSET:
            logger.warning(
                "this process's clock differs from the store's by %.3fs; using the store's clock",
                offset.total_seconds(),
            )
        self.offset = offset
