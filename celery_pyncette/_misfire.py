"""Late occurrences: the misfire grace and the message expiry, relative to an occurrence's time.

* ``misfire_grace`` (a task option, and an instance option of ``schedule_task`` /
  ``schedule_tasks``): an occurrence that beat claims more than the grace after its
  ``scheduled_at`` is not sent; it is settled with status ``"missed"`` and its schedule goes on
  (the next run is computed as for any commit, so ``catch_up=True`` replays the next one, which
  is missed in turn while it is older than the grace). An instance keeps its own grace in its
  stored spec (:data:`SPEC_KEY`, in seconds), so that every beat reads the same one; an instance
  without one has its task's.
* ``expires`` (Celery's option, of a task or of a ``beat_schedule`` entry): a number of seconds or
  a ``timedelta`` counts from the occurrence's ``scheduled_at``, not from the moment beat sends
  it. The message carries the absolute expiry (:func:`message_options`); an occurrence that beat
  claims after it is settled with status ``"expired"`` without being sent, and a worker that
  receives its message after it settles it ``"expired"`` too (see
  :mod:`celery_pyncette.worker._expiry`). A ``datetime`` (or ISO string) stays absolute, as in
  Celery.

The grace is judged by beat at claim time only: a message that waited in the broker queue longer
than the grace still runs; ``expires`` is the bound on that wait.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from celery_pyncette import _events as events
from celery_pyncette import metrics, signals
from celery_pyncette._bounds import MAX_DURATION, check_duration
from celery_pyncette._records import BACKFILL, extra_why
from celery_pyncette.stores.base import (
    STATIC_INSTANCE,
    ClaimedRecord,
    InstanceKey,
    InstanceRecord,
    Status,
)

logger = logging.getLogger("celery_pyncette.dispatch")

#: The key of an instance's stored spec that holds its own grace, in seconds (schedules ignore
#: keys they do not use).
SPEC_KEY = "misfire_grace"


def check_grace(value: Any, what: str = "misfire_grace") -> timedelta | None:
    """``value`` if it is ``None`` or a positive ``timedelta`` (at most ten years); else
    ``ValueError`` naming ``what``."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise ValueError(f"{what} must be a positive timedelta, got {value!r}")
    return check_duration(value, what)


def check_expires(value: Any) -> Any:
    """Check a Celery ``expires`` option: ``None``, non-negative finite seconds, a non-negative
    ``timedelta``, a ``datetime`` or an ISO 8601 string (both absolute). Returns it unchanged;
    ``ValueError`` naming ``expires`` otherwise."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expires is not an ISO 8601 datetime: {value!r}") from None
        return value
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"expires must be seconds, a timedelta or a datetime, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expires must be non-negative and finite, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"expires of {value!r} is longer than {MAX_DURATION.days} days")
    return value


def with_grace(spec: Mapping[str, Any], grace: timedelta | None) -> dict[str, Any]:
    """An instance's stored spec carrying its own grace (the spec as it is for ``None``)."""
    stored = dict(spec)
    if grace is not None:
        stored[SPEC_KEY] = grace.total_seconds()
    return stored


def stored_grace(spec: Mapping[str, Any] | None) -> timedelta | None:
    """The grace an instance's spec holds, if any (an unreadable value counts as none)."""
    if not spec:
        return None
    seconds = spec.get(SPEC_KEY)
    # Decimal: what DynamoDB returns for a number.
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, Decimal)):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return timedelta(seconds=float(seconds))


def expiry(scheduled_at: datetime, expires: Any) -> datetime | None:
    """The absolute expiry of an occurrence: ``scheduled_at + expires`` for seconds or a
    ``timedelta``, the time itself for a ``datetime`` or ISO string (a naive one is UTC)."""
    if expires is None:
        return None
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires)
    if isinstance(expires, datetime):
        return expires if expires.tzinfo is not None else expires.replace(tzinfo=timezone.utc)
    if isinstance(expires, timedelta):
        return scheduled_at + expires
    return scheduled_at + timedelta(seconds=float(expires))


def backfilled(record: InstanceRecord) -> bool:
    """True for an occurrence a backfill wrote: late on purpose, so neither missed nor expired
    (its message's ``expires`` counts from when it is sent, as Celery counts it)."""
    return extra_why(record) == BACKFILL


def message_options(
    options: Mapping[str, Any],
    scheduled_at: datetime,
    memo: dict[datetime, Mapping[str, Any]] | None = None,
) -> Mapping[str, Any]:
    """A message's Celery options with ``expires`` made absolute for its occurrence.

    ``memo`` keeps one dict per occurrence time for a batch: the publisher builds one message
    template per options object, and a batch's occurrences mostly share their time. Options
    without ``expires`` are returned as they are."""
    if options.get("expires") is None:
        return options
    if memo is None:
        memo = {}
    made = memo.get(scheduled_at)
    if made is None:
        made = memo[scheduled_at] = {
            **options,
            "expires": expiry(scheduled_at, options["expires"]),
        }
    return made


class _Claim(Protocol):
    @property
    def scheduled_at(self) -> datetime: ...

    @property
    def record(self) -> ClaimedRecord: ...


C = TypeVar("C", bound=_Claim)


@dataclass
class Late(Generic[C]):
    """The late claims of a batch: ``missed`` (past their grace) and ``expired`` (past their
    expiry), and how late the latest of them was."""

    missed: list[C] = field(default_factory=list)
    expired: list[C] = field(default_factory=list)
    most_late: timedelta = timedelta(0)
    statuses: dict[InstanceKey, Status] = field(default_factory=dict, repr=False)

    def add(self, claim: C, status: Status, lateness: timedelta) -> None:
        """Count ``claim`` as late by ``lateness``, to be settled with ``status``."""
        (self.expired if status == "expired" else self.missed).append(claim)
        self.statuses[claim.record.key] = status
        self.most_late = max(self.most_late, lateness)

    def __bool__(self) -> bool:
        return bool(self.statuses)

    def status_of(self, claim: C) -> Status:
        """``"expired"`` or ``"missed"``: what ``claim`` (one of these) is settled as."""
        return self.statuses[claim.record.key]


def late_claims(
    claims: Iterable[C],
    now: datetime,
    grace_of: Callable[[C], timedelta | None],
    expires: Any,
) -> Late[C]:
    """Sort out the claims that are too late to send at ``now``: past their expiry (``expires``,
    the task's Celery option) or claimed more than their grace (``grace_of``) after their time.
    An occurrence past both is ``expired``; a backfilled one is neither (:func:`backfilled`).
    Lateness is counted from when the occurrence was due to be sent (its stored next run: a
    jittered occurrence's offset is not lateness); the expiry from its nominal time, as the
    message carries it."""
    late: Late[C] = Late()
    for claim in claims:
        if backfilled(claim.record):
            continue
        lateness = now - claim.record.next_run
        until = expiry(claim.scheduled_at, expires)
        if until is not None and now >= until:
            late.add(claim, "expired", lateness)
            continue
        grace = grace_of(claim)
        if grace is not None and lateness > grace:
            late.add(claim, "missed", lateness)
    return late


class _Task(Protocol):
    """What :func:`skip_late` reads of a task definition (``_definitions`` imports this module)."""

    @property
    def name(self) -> str: ...

    @property
    def dynamic(self) -> bool: ...

    @property
    def misfire_grace(self) -> timedelta | None: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


def skip_late(
    definition: _Task,
    claims: list[C],
    now: datetime,
    commit: Callable[[list[C], Callable[[C], Status]], list[InstanceKey]],
) -> list[C]:
    """The claims of a batch that are still in time to send; the late ones are settled.

    ``commit`` advances the given claims, each with its status (``"missed"`` or ``"expired"``),
    in one store call, and returns the keys it could not commit (a lost lease: the lease holder
    settles them; a next run that cannot be computed: quarantined). Counted in the
    ``pyncette_commits_total`` metric by status, logged once for the batch, and each committed
    one sent as ``occurrence_settled`` (``outcome`` its status).
    """
    expires = definition.options.get("expires")
    if expires is None and definition.misfire_grace is None and not definition.dynamic:
        return claims

    def grace_of(claim: C) -> timedelta | None:
        if claim.record.key.instance == STATIC_INSTANCE:
            return definition.misfire_grace
        return stored_grace(claim.record.spec) or definition.misfire_grace

    late = late_claims(claims, now, grace_of, expires)
    if not late:
        return claims
    settled = late.missed + late.expired
    failed = set(commit(settled, late.status_of))
    for status, claimed in (("missed", late.missed), ("expired", late.expired)):
        committed = [c for c in claimed if c.record.key not in failed]
        metrics.record_commit(definition.name, status, len(committed))
        if signals.occurrence_settled.receivers:
            for claim in committed:
                key = claim.record.key
                instance = None if key.instance == STATIC_INSTANCE else key.instance
                events.send(
                    signals.occurrence_settled,
                    definition.name,
                    instance,
                    key.partition,
                    claim.scheduled_at,
                    outcome=status,
                )
    report(definition.name, late, len(settled) - len(failed))
    return [c for c in claims if c.record.key not in late.statuses]


def report(task: str, late: Late[Any], settled: int) -> None:
    """One log line for a batch's late claims (``settled`` of them were committed)."""
    logger.warning(
        "%d occurrence(s) of %s not sent: %d past their misfire grace (missed), %d past their "
        "expiry (expired), up to %g s late; %d settled",
        len(late.missed) + len(late.expired),
        task,
        len(late.missed),
        len(late.expired),
        late.most_late.total_seconds(),
        settled,
    )
