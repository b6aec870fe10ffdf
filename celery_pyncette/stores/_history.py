"""Run history values of the store contract: :class:`Run`, its JSON form, and the rule that ends
an instance after ``max_runs`` settled runs.

A commit may carry one :class:`Run` and the number of entries to keep (``history_size``); the
store writes it with the commit, in the same round trip, newest first, dropping the oldest beyond
that size. Every commit also adds one to the instance's count of settled runs, kept beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

#: How a run was settled: it succeeded, failed (and was committed), was struck (advanced without
#: running), was found too late (missed) or expired, lost its lease, or was sent (at-most-once:
#: committed before sending).
Status = Literal["success", "failed", "struck", "missed", "expired", "lease_lost", "sent"]

#: The statuses, in the order the docs list them.
STATUSES: tuple[str, ...] = (
    "success",
    "failed",
    "struck",
    "missed",
    "expired",
    "lease_lost",
    "sent",
)

#: Longest error text kept in a history entry, in characters (the rest is cut, with "…").
ERROR_CHARS = 500

#: The next run of a static task that has had its ``max_runs``: it is kept (its code would
#: schedule it again otherwise), never due.
FINISHED = datetime(9999, 12, 31, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Run:
    """One settled run of an instance, as ``Pyncette.history`` returns it.

    ``started_at`` is ``None`` for a run that did not start (struck by beat, missed, sent);
    ``worker`` is the hostname of the process that settled it; ``error`` is
    ``"Type: message"`` (cut to :data:`ERROR_CHARS`) for a failed run, else ``None``.
    """

    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime
    status: str
    worker: str | None = None
    error: str | None = None


def error_text(exc: BaseException) -> str:
    """``"Type: message"`` of an exception, cut to :data:`ERROR_CHARS` characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(timezone.utc)


def run_to_json(run: Run) -> str:
    """The compact JSON text a store keeps for ``run``."""
    return json.dumps(
        [
            _iso(run.scheduled_at),
            _iso(run.started_at),
            _iso(run.finished_at),
            run.status,
            run.worker,
            run.error,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def run_from_json(text: str | bytes) -> Run:
    """The inverse of :func:`run_to_json`; ``ValueError`` on text it did not make."""
    try:
        scheduled, started, finished, status, worker, error = json.loads(text)
        scheduled_at, finished_at = _time(scheduled), _time(finished)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a stored run: {text!r}") from exc
    if scheduled_at is None or finished_at is None:
        raise ValueError(f"not a stored run: {text!r}")
    return Run(scheduled_at, _time(started), finished_at, status, worker, error)


def check_history(history_size: int, max_runs: int | None) -> None:
    """Refuse a history size that is not a non-negative int, or a ``max_runs`` that is not a
    positive int (``ValueError``, before the store is touched)."""
    if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 0:
        raise ValueError(f"history_size must be a non-negative int, got {history_size!r}")
    if max_runs is not None and (
        isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1
    ):
        raise ValueError(f"max_runs must be a positive int, got {max_runs!r}")


def settled_next_run(
    static: bool, next_run: datetime | None, runs_after: int, max_runs: int | None
) -> datetime | None:
    """The next run a commit writes once the instance has ``runs_after`` settled runs: the
    caller's, unless ``max_runs`` is reached; then ``None`` (the instance is removed) for a
    dynamic instance, :data:`FINISHED` for a static task."""
    if max_runs is None or runs_after < max_runs or next_run is None:
        return next_run
    return FINISHED if static else None


def decoded_runs(entries: Iterable[str | bytes], limit: int) -> list[Run]:
    """The first ``limit`` entries (JSON texts of :func:`run_to_json`) that decode; the others
    are left out."""
    runs: list[Run] = []
    for text in entries:
        if len(runs) >= limit:
            break
        try:
            runs.append(run_from_json(text))
        except ValueError:
            continue
    return runs


def history_lines(value: str | bytes | None) -> list[str | bytes]:
    """The entries of a history kept as lines of JSON text, newest first (none for ``None``)."""
    if not value:
        return []
    return list(value.splitlines())
