"""The values of the store contract: instance keys and records, claims, commits, quarantine
entries and strikes (see :mod:`celery_pyncette.stores.base`, which exports them all).

Every value is immutable. Times are aware UTC datetimes; ``spec`` and ``args`` are JSON objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NamedTuple

from celery_pyncette.stores._history import Run, Status

#: The instance name under which a static task's single record is stored.
STATIC_INSTANCE = "__static__"

#: The comparison a strike with a parameter makes.
StrikeOperator = Literal["==", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class InstanceKey:
    """Identity of one stored instance."""

    task: str
    partition: int
    instance: str


@dataclass(frozen=True, slots=True, eq=False)
class InstanceRecord:
    """One stored instance, as a store returns it.

    ``spec`` is the JSON form of the schedule (see :mod:`celery_pyncette.schedules`) and ``args``
    the JSON arguments; a store keeps both as given and returns equal values. Records are equal
    when their fields are, whatever their class (a :class:`ClaimedRecord` equals the same record
    read back).
    """

    key: InstanceKey
    next_run: datetime
    spec: Mapping[str, Any] = field(default_factory=dict)
    args: Mapping[str, Any] = field(default_factory=dict)
    locked_until: datetime | None = None
    lease: str | None = None
    locked_by: str | None = None
    last_run_at: datetime | None = None
    last_status: str | None = None

    @property
    def ready_at(self) -> datetime:
        """When the instance can next be claimed: due and not under a live lease."""
        if self.locked_until is not None and self.locked_until > self.next_run:
            return self.locked_until
        return self.next_run

    def is_locked(self, now: datetime) -> bool:
        """True while a lease is live at ``now``."""
        return self.locked_until is not None and self.locked_until > now

    def with_changes(self, **changes: Any) -> InstanceRecord:
        """A copy with the given fields replaced."""
        return replace(self, **changes)

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.key,
            self.next_run,
            self.spec,
            self.args,
            self.locked_until,
            self.lease,
            self.locked_by,
            self.last_run_at,
            self.last_status,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstanceRecord):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


@dataclass(frozen=True, slots=True, eq=False)
class ClaimedRecord(InstanceRecord):
    """A record as a claim returns it: leased, so ``lease`` is its token, never ``None``.

    Build one with :func:`claimed`; :attr:`ref` names the lease for commits, unlocks and
    heartbeats.
    """

    lease: str = field(kw_only=True)

    @property
    def ref(self) -> LeaseRef:
        """The instance and the lease this claim holds it under."""
        return LeaseRef(self.key, self.lease)


def claimed(record: InstanceRecord) -> ClaimedRecord:
    """The :class:`ClaimedRecord` of a record a claim just leased (``ValueError`` when it carries
    no lease: a store's mistake)."""
    if not record.lease:
        raise ValueError(f"{record.key} was claimed without a lease token")
    return ClaimedRecord(
        key=record.key,
        next_run=record.next_run,
        spec=record.spec,
        args=record.args,
        locked_until=record.locked_until,
        lease=record.lease,
        locked_by=record.locked_by,
        last_run_at=record.last_run_at,
        last_status=record.last_status,
    )


class LeaseRef(NamedTuple):
    """An instance and the lease token it is held under (what unlocks and heartbeats name)."""

    key: InstanceKey
    lease: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record taken out of the due index because it cannot be decoded or computed.

    It stays out until :meth:`Store.upsert` replaces it (a repair) or :meth:`Store.delete`
    removes it; ``reason`` says what failed, ``since`` when it was quarantined.
    """

    key: InstanceKey
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """One batch of :meth:`Store.claim_batches`: the records and the time they were claimed at.

    ``quarantined`` names the records the claim found undecodable and quarantined instead of
    leasing (see :meth:`Store.quarantine`); they are not in ``records``.
    """

    now: datetime
    records: list[ClaimedRecord]
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit of a batch: see :meth:`Store.commit`."""

    key: InstanceKey
    lease: str
    next_run: datetime | None
    status: Status = "success"
    #: The history entry written with the commit (none: nothing is added to the history).
    run: Run | None = None
    #: How many history entries the instance keeps (0: the history is not written).
    history_size: int = 0
    #: After this many settled runs the instance ends (see :meth:`Store.commit`).
    max_runs: int | None = None


@dataclass(frozen=True, slots=True)
class RunLog:
    """What a store keeps of an instance's runs: ``count`` settled runs so far, and the last
    ones (``runs``), newest first."""

    count: int = 0
    runs: list[Run] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Strike:
    """A rule that disables occurrences without a deploy.

    ``task`` ``None`` matches every task; ``parameter`` ``None`` matches every occurrence of the
    task. ``reason`` is a note for people (``"incident 4711"``): it is stored and listed with the
    strike but is not part of what it matches, nor of its identity (:func:`strike_id`), so
    adding the same rule again replaces its reason and a restore needs no reason.
    """

    task: str | None
    parameter: str | None = None
    operator: StrikeOperator | None = None
    value: Any = None
    reason: str | None = None


def strike_id(strike: Strike) -> str:
    """A canonical string identity of a strike, equal for strikes of one rule (stores key on it;
    the reason is not part of it)."""
    return json.dumps(
        [strike.task, strike.parameter, strike.operator, strike.value], sort_keys=True
    )


def spec_text(spec: Mapping[str, Any]) -> str:
    """The canonical JSON text of a schedule spec: keys sorted at every level, no spaces.

    Equal specs have equal texts whatever their key order; stores write specs in this form and
    compare them on it (an upsert with ``keep_next_run``). ``ValueError`` when it is not JSON.
    """
    try:
        return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a spec must be a JSON object: {exc}") from exc


def strike_from_id(ident: str, reason: str | None = None) -> Strike:
    """The inverse of :func:`strike_id`, with the ``reason`` stored beside the id (``None`` for a
    strike stored without one, as every strike before reasons was)."""
    task, parameter, operator, value = json.loads(ident)
    return Strike(task, parameter, operator, value, reason)
