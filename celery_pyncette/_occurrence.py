"""The ``pyncette`` message header: what beat tells the worker about one occurrence.

Beat adds it to every message it sends; the worker reads it back to build the context and to
commit, unlock or keep the lease. It is plain JSON so that any Celery serializer carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery_pyncette._definitions import ExecutionMode
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey, LeaseRef

HEADER = "pyncette"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One due occurrence as sent: which instance, when it was due, and the lease it runs under."""

    task: str
    instance: str | None
    partition: int
    scheduled_at: datetime
    mode: ExecutionMode
    lease: str | None = None
    locked_until: datetime | None = None
    spec: Mapping[str, Any] | None = None
    #: The concurrency slot held for this occurrence: its key and lease token.
    slot: LeaseRef | None = None
    #: The stored record this occurrence is leased under when it is not the instance's own: an
    #: extra occurrence (run now, backfill; see :mod:`celery_pyncette._records`).
    record: str | None = None

    @property
    def key(self) -> InstanceKey:
        """The stored record this occurrence is leased under (committed, unlocked, extended)."""
        if self.record is not None:
            return InstanceKey(self.task, self.partition, self.record)
        return self.instance_key

    @property
    def instance_key(self) -> InstanceKey:
        """The stored instance this occurrence runs for (``context.unschedule()`` removes it)."""
        return InstanceKey(self.task, self.partition, self.instance or STATIC_INSTANCE)

    @classmethod
    def from_header(cls, value: Any) -> Occurrence | None:
        """Parse a header value; ``None`` when it is absent or not ours (a malformed one raises)."""
        if not isinstance(value, Mapping) or value.get("v") != _VERSION:
            return None
        locked_until = value.get("locked_until")
        slot = value.get("slot")
        return cls(
            task=str(value["task"]),
            instance=value.get("instance"),
            partition=int(value.get("partition", 0)),
            scheduled_at=datetime.fromisoformat(value["scheduled_at"]),
            mode=ExecutionMode(value["mode"]),
            lease=value.get("lease"),
            locked_until=datetime.fromisoformat(locked_until) if locked_until else None,
            spec=value.get("spec"),
            slot=LeaseRef(InstanceKey(slot[0], 0, slot[1]), slot[2]) if slot else None,
            record=value.get("record"),
        )


def header_value(
    task: str,
    instance: str | None,
    partition: int,
    scheduled_at: datetime,
    mode: ExecutionMode,
    lease: str | None,
    locked_until: datetime | None,
    spec: Mapping[str, Any] | None,
    slot: LeaseRef | None,
    iso: dict[datetime, str] | None = None,
    record: str | None = None,
) -> dict[str, Any]:
    """The ``pyncette`` header of an occurrence (what :meth:`Occurrence.from_header` reads), built
    without an
    :class:`Occurrence`: beat makes one for every message it sends. ``iso``, when given, caches
    the ISO texts of the times across calls (a batch's claims share their lease expiry).
    ``record`` names the stored record of an extra occurrence (absent from the header otherwise)."""
    if iso is None:
        iso = {}
    scheduled = iso.get(scheduled_at) or iso.setdefault(scheduled_at, scheduled_at.isoformat())
    expiry = None
    if locked_until is not None:
        expiry = iso.get(locked_until) or iso.setdefault(locked_until, locked_until.isoformat())
    value: dict[str, Any] = {
        "v": _VERSION,
        "task": task,
        "instance": instance,
        "partition": partition,
        "scheduled_at": scheduled,
        "mode": mode.value,
        "lease": lease,
        "locked_until": expiry,
        "spec": dict(spec) if spec is not None else None,
        "slot": [slot[0].task, slot[0].instance, slot[1]] if slot else None,
    }
    if record is not None:
        value["record"] = record
    return value


def occurrence_of(request: Any) -> Occurrence | None:
    """The occurrence a Celery task request carries, if beat sent it.

    Custom headers arrive both in ``request.headers`` and as attributes of the request, depending
    on the protocol and the Celery version; both are looked at.
    """
    value = getattr(request, HEADER, None)
    if value is None:
        headers = getattr(request, "headers", None) or {}
        value = headers.get(HEADER) if isinstance(headers, Mapping) else None
    return Occurrence.from_header(value)


def update_header(request: Any, occurrence: Occurrence | None) -> None:
    """Write ``occurrence``'s header back into a Celery task request, in place.

    After the worker took the execution lease the request carries the new token, so a message
    Celery builds from the request (``self.retry()`` copies ``request.headers``) runs under the
    lease this execution holds rather than the one beat sent. Does nothing when the request
    carries no ``pyncette`` header (a direct call).
    """
    if occurrence is None or occurrence.lease is None:
        return
    value = header_value(
        occurrence.task,
        occurrence.instance,
        occurrence.partition,
        occurrence.scheduled_at,
        occurrence.mode,
        occurrence.lease,
        occurrence.locked_until,
        occurrence.spec,
        occurrence.slot,
        record=occurrence.record,
    )
    if isinstance(getattr(request, HEADER, None), Mapping):
        setattr(request, HEADER, value)
    headers = getattr(request, "headers", None)
    if isinstance(headers, Mapping) and HEADER in headers:
        # A new dict: the one the request holds may be the caller's (``apply(headers=...)``).
        request.headers = {**headers, HEADER: value}
