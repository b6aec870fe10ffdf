"""Log lines that name an occurrence, without leaking its arguments.

Every claim, send, commit and failure is logged with the task, the instance and the scheduled
time. Arguments are left out unless the task marks them loggable (``log_args=``): by value, or for
collections by length only, so secrets and personal data stay out of logs by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from datetime import datetime
from typing import Any

#: How a loggable argument is shown.
VALUE = "value"
LENGTH = "length"


def parse_log_args(value: Any) -> tuple[tuple[str, str], ...]:
    """From ``log_args=``: names (shown by value) or ``{name: "value" | "length"}``."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ValueError(f"log_args must be a list of names or a mapping, got {value!r}")
    items = value.items() if isinstance(value, Mapping) else ((name, VALUE) for name in value)
    parsed = []
    for name, how in items:
        if not isinstance(name, str) or how not in (VALUE, LENGTH):
            raise ValueError(f"log_args entry {name!r}: {how!r} (use 'value' or 'length')")
        parsed.append((name, how))
    return tuple(parsed)


def _shown(value: Any, how: str) -> str:
    if how == LENGTH:
        return f"len={len(value)}" if isinstance(value, Sized) else "len=?"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def occurrence(
    task: str,
    instance: str | None,
    scheduled_at: datetime | None,
    args: Mapping[str, Any] | None = None,
    logged: Sequence[tuple[str, str]] = (),
) -> str:
    """``task=… instance=… scheduled_at=…`` plus the loggable arguments."""
    parts = [f"task={task}"]
    if instance is not None:
        parts.append(f"instance={instance!r}")
    if scheduled_at is not None:
        parts.append(f"scheduled_at={scheduled_at.isoformat()}")
    if args and logged:
        shown = [f"{name}={_shown(args[name], how)}" for name, how in logged if name in args]
        if shown:
            parts.append("args(" + ", ".join(shown) + ")")
    return " ".join(parts)
