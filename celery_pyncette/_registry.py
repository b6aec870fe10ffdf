"""Which beats are alive and what they poll, kept in the store itself.

Each beat keeps one record under a reserved task (instance = the beat's owner id; the layout is
in :mod:`celery_pyncette._records`), rewritten at most every :data:`REPORT_EVERY`. The records are
never claimed (no beat polls that task), so they cost nothing on the hot path and need no store
operation of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette._records import BEATS_TASK, beat_key, beat_record
from celery_pyncette.stores.base import Store

#: How often a beat rewrites its record.
REPORT_EVERY = timedelta(seconds=5)
#: A beat whose record is older than this is reported as stale.
STALE_AFTER = timedelta(seconds=30)
#: Records of beats silent this long are removed by the other beats.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class BeatInfo:
    """One beat as it last reported itself."""

    owner: str
    hostname: str
    pid: int
    started_at: datetime
    last_tick: datetime
    partitions: Mapping[str, Sequence[int]]

    def is_stale(self, now: datetime) -> bool:
        """True when the beat has not reported for :data:`STALE_AFTER`."""
        return now - self.last_tick > STALE_AFTER


def beat_problems(beats: Sequence[BeatInfo], now: datetime, owner: str | None = None) -> list[str]:
    """What makes ``celery pyncette status`` unhealthy: no beat alive, or a stale beat.

    With ``owner``, the same rule judges one beat alone (its own ``GET /healthz``): that beat
    has no record, or its record is stale. Other beats' records are not its problems: a beat
    killed without a goodbye must not make every other beat's probe fail.
    """
    if owner is not None:
        beats = [beat for beat in beats if beat.owner == owner]
        if not beats:
            return [f"beat {owner} has no record in the store"]
    problems: list[str] = []
    if owner is None and all(beat.is_stale(now) for beat in beats):
        problems.append("no beat is alive")
    for beat in beats:
        if beat.is_stale(now):
            silent = int((now - beat.last_tick).total_seconds())
            problems.append(f"beat {beat.owner} is stale: last report {silent}s ago")
    return problems


def record_beat(
    store: Store,
    owner: str,
    *,
    hostname: str,
    pid: int,
    started_at: datetime,
    partitions: Mapping[str, Sequence[int]],
    now: datetime,
) -> None:
    """Write (or refresh) this beat's record."""
    args: dict[str, Any] = {
        "hostname": hostname,
        "pid": pid,
        "started_at": started_at.isoformat(),
        "last_tick": now.isoformat(),
        "partitions": {task: list(parts) for task, parts in partitions.items()},
    }
    store.upsert(beat_record(owner, args, now), now, force=True)


def forget_beat(store: Store, owner: str) -> None:
    """Remove this beat's record (at a clean shutdown)."""
    store.delete(beat_key(owner))


def forget_dead_beats(store: Store, now: datetime, older_than: timedelta = FORGET_AFTER) -> int:
    """Remove records of beats silent for ``older_than`` (killed without a clean shutdown)."""
    dead = [b.owner for b in list_beats(store) if now - b.last_tick > older_than]
    for owner in dead:
        forget_beat(store, owner)
    return len(dead)


def list_beats(store: Store) -> list[BeatInfo]:
    """Every beat that has reported, stale ones included."""
    beats: list[BeatInfo] = []
    after: str | None = None
    while page := store.list_instances(BEATS_TASK, 0, 500, after):
        after = page[-1].key.instance
        for record in page:
            args = record.args
            beats.append(
                BeatInfo(
                    owner=record.key.instance,
                    hostname=str(args.get("hostname", "")),
                    pid=int(args.get("pid", 0)),
                    started_at=datetime.fromisoformat(args["started_at"]),
                    last_tick=datetime.fromisoformat(args["last_tick"]),
                    partitions={k: list(v) for k, v in dict(args.get("partitions", {})).items()},
                )
            )
    return beats
