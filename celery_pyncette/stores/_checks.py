"""The argument checks every store makes before it touches its backend, so that every store
refuses the same arguments with the same :class:`ValueError`.

A limit is a positive ``int`` (a ``bool`` is not one); a lease lasts a positive ``timedelta``; the
times a store writes or compares (``now``, next runs, lease expiries) are timezone-aware; a
strike's reason is a short line of text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any


def check_limit(limit: Any) -> None:
    """Raise :class:`ValueError` unless ``limit`` is a positive integer."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")


def check_lease_duration(lease_duration: Any) -> None:
    """Raise :class:`ValueError` unless ``lease_duration`` is a positive :class:`timedelta`."""
    if not isinstance(lease_duration, timedelta) or lease_duration <= timedelta(0):
        raise ValueError(f"lease_duration must be a positive timedelta, got {lease_duration!r}")


def check_aware(name: str, moment: datetime | None) -> None:
    """Raise :class:`ValueError` when ``moment`` (called ``name``) is a naive datetime."""
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{name} {moment!r} is naive: store times must be timezone-aware (UTC)")


def check_claim(now: datetime | None, limit: Any, lease_duration: Any) -> None:
    """The checks of a claim: a positive limit and lease, an aware ``now`` (when given)."""
    check_limit(limit)
    check_lease_duration(lease_duration)
    check_aware("now", now)


def check_next_runs(now: datetime, next_runs: Iterable[datetime | None]) -> None:
    """An aware ``now`` and aware next runs (``None``: no next run)."""
    check_aware("now", now)
    for next_run in next_runs:
        check_aware("next_run", next_run)


#: Longest strike reason, in characters.
STRIKE_REASON_CHARS = 500


def check_strike_reason(reason: Any) -> None:
    """Raise :class:`ValueError` unless ``reason`` is ``None`` or one line of 1 to
    :data:`STRIKE_REASON_CHARS` characters that is not only blanks (no control characters)."""
    if reason is None:
        return
    if not isinstance(reason, str):
        raise ValueError(f"a strike reason must be a string, got {type(reason).__name__}")
    if not reason.strip():
        raise ValueError("a strike reason must not be blank (leave it out for none)")
    if len(reason) > STRIKE_REASON_CHARS:
        raise ValueError(
            f"a strike reason is at most {STRIKE_REASON_CHARS} characters, got {len(reason)}"
        )
    control = next((char for char in reason if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        raise ValueError(
            f"a strike reason must be one line without control characters, found {control!r}"
        )
