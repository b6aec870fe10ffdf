"""The one place that reads the wall clock, so tests and fault injection can move it."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)
