"""An in-process store: the reference implementation of the contract, for tests and demos.

Nothing is persisted and nothing is shared between processes. Every operation holds one lock, so
the store is safe across threads of one process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from celery_pyncette._ids import lease_tokens
from celery_pyncette.errors import LeaseLostError, TaskLockedError
from celery_pyncette.stores._checks import (
    check_aware,
    check_claim,
    check_limit,
    check_next_runs,
    check_strike_reason,
)
from celery_pyncette.stores._history import Run, check_history, settled_next_run
from celery_pyncette.stores.base import (
    STATIC_INSTANCE,
    ClaimedBatch,
    InstanceKey,
    InstanceRecord,
    Quarantined,
    RunLog,
    Status,
    Store,
    Strike,
    claimed,
    spec_text,
    strike_id,
)


class MemoryStore(Store):
    """``memory://``: instances in a dict, claims by scanning one task partition."""

    def __init__(self, url: str = "memory://", **options: Any) -> None:
        super().__init__(url, **options)
        self._lock = threading.Lock()
        self._records: dict[InstanceKey, InstanceRecord] = {}
        self._quarantined: dict[InstanceKey, Quarantined] = {}
        #: Per instance: its count of settled runs and its history, newest first.
        self._runs: dict[InstanceKey, RunLog] = {}
        self._strikes: dict[str, Strike] = {}
        self._strikes_version = 0

    def claim(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> ClaimedBatch:
        check_claim(now, limit, lease_duration)
        with self._lock:
            due = sorted(
                (
                    r
                    for r in self._records.values()
                    if r.key.task == task
                    and r.key.partition == partition
                    and r.ready_at <= now
                    and r.key not in self._quarantined
                ),
                key=lambda r: (r.ready_at, r.key.instance),
            )[:limit]
            leased = [
                r.with_changes(
                    locked_until=now + lease_duration, lease=lease_tokens(1)[0], locked_by=owner
                )
                for r in due
            ]
            for record in leased:
                self._records[record.key] = record
            return ClaimedBatch(now, [claimed(record) for record in leased])

    def due_partitions(
        self, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """Exactly the groups holding an instance whose ``ready_at <= now`` (one scan)."""
        check_aware("now", now)
        wanted = set(groups)
        with self._lock:
            return {
                (r.key.task, r.key.partition)
                for r in self._records.values()
                if r.ready_at <= now
                and (r.key.task, r.key.partition) in wanted
                and r.key not in self._quarantined
            }

    def earliest_ready(self, groups: Sequence[tuple[str, int]]) -> datetime | None:
        """Exactly the earliest ``ready_at`` in the groups, quarantined instances left out."""
        wanted = set(groups)
        with self._lock:
            return min(
                (
                    r.ready_at
                    for r in self._records.values()
                    if (r.key.task, r.key.partition) in wanted and r.key not in self._quarantined
                ),
                default=None,
            )

    def _leased(self, key: InstanceKey, lease: str) -> InstanceRecord:
        record = self._records.get(key)
        if record is None or record.lease != lease:
            raise LeaseLostError(f"lease {lease} of {key} is lost")
        return record

    def commit(
        self,
        key: InstanceKey,
        lease: str,
        next_run: datetime | None,
        now: datetime,
        status: Status = "success",
        *,
        run: Run | None = None,
        history_size: int = 0,
        max_runs: int | None = None,
    ) -> None:
        check_next_runs(now, [next_run])
        check_history(history_size, max_runs)
        with self._lock:
            record = self._leased(key, lease)
            log = self._runs.get(key, RunLog())
            runs = log.runs
            if run is not None and history_size > 0:
                runs = [run, *runs][:history_size]
            count = log.count + 1
            next_run = settled_next_run(key.instance == STATIC_INSTANCE, next_run, count, max_runs)
            if next_run is None:
                del self._records[key]
                self._runs.pop(key, None)
                return
            self._runs[key] = RunLog(count, runs)
            self._records[key] = record.with_changes(
                next_run=next_run,
                locked_until=None,
                lease=None,
                locked_by=None,
                last_run_at=now,
                last_status=status,
            )

    def run_log(self, key: InstanceKey, limit: int) -> RunLog:
        check_limit(limit)
        with self._lock:
            log = self._runs.get(key, RunLog())
            return RunLog(log.count, log.runs[:limit])

    def unlock(
        self, key: InstanceKey, lease: str, *, run: Run | None = None, history_size: int = 0
    ) -> None:
        check_history(history_size, None)
        with self._lock:
            record = self._leased(key, lease)
            if run is not None and history_size > 0:
                log = self._runs.get(key, RunLog())
                self._runs[key] = RunLog(log.count, [run, *log.runs][:history_size])
            self._records[key] = record.with_changes(locked_until=None, lease=None, locked_by=None)

    def _record_run(self, key: InstanceKey, run: Run, history_size: int) -> bool:
        with self._lock:
            if key not in self._records:
                return False
            log = self._runs.get(key, RunLog())
            self._runs[key] = RunLog(log.count, [run, *log.runs][:history_size])
            return True

    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None:
        check_aware("until", until)
        with self._lock:
            record = self._leased(key, lease)
            self._records[key] = record.with_changes(locked_until=until, lease=new_lease or lease)

    def upsert(
        self,
        record: InstanceRecord,
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> datetime:
        check_next_runs(now, [record.next_run])
        text = spec_text(record.spec) if keep_next_run else None
        with self._lock:
            existing = self._records.get(record.key)
            if existing is not None and existing.is_locked(now) and not force:
                raise TaskLockedError(f"{record.key} is locked until {existing.locked_until}")
            next_run = record.next_run
            if (
                text is not None
                and existing is not None
                and record.key not in self._quarantined
                and spec_text(existing.spec) == text
            ):
                next_run = existing.next_run
            self._quarantined.pop(record.key, None)
            self._records[record.key] = record.with_changes(
                next_run=next_run,
                locked_until=None,
                lease=None,
                locked_by=None,
                last_run_at=existing.last_run_at if existing else None,
                last_status=existing.last_status if existing else None,
            )
            return next_run

    def delete(self, key: InstanceKey) -> bool:
        with self._lock:
            self._quarantined.pop(key, None)
            self._runs.pop(key, None)
            return self._records.pop(key, None) is not None

    def quarantine(self, key: InstanceKey, lease: str | None, reason: str, now: datetime) -> bool:
        check_aware("now", now)
        with self._lock:
            record = self._records.get(key)
            if record is None or (lease is not None and record.lease != lease):
                return False
            self._quarantined[key] = Quarantined(key, reason, now)
            self._records[key] = record.with_changes(locked_until=None, lease=None, locked_by=None)
            return True

    def list_quarantined(self, task: str | None = None, limit: int = 100) -> list[Quarantined]:
        with self._lock:
            found = sorted(
                (q for q in self._quarantined.values() if task is None or q.key.task == task),
                key=lambda q: (q.key.task, q.key.partition, q.key.instance),
            )
            return found[: max(limit, 0)]

    def get(self, key: InstanceKey) -> InstanceRecord | None:
        with self._lock:
            return self._records.get(key)

    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> list[InstanceRecord]:
        check_limit(limit)
        with self._lock:
            names = sorted(
                k.instance
                for k in self._records
                if k.task == task
                and k.partition == partition
                and (after is None or k.instance > after)
            )[:limit]
            return [self._records[InstanceKey(task, partition, name)] for name in names]

    def add_strike(self, strike: Strike) -> None:
        check_strike_reason(strike.reason)
        with self._lock:
            self._strikes[strike_id(strike)] = strike
            self._strikes_version += 1

    def remove_strike(self, strike: Strike) -> bool:
        with self._lock:
            existed = self._strikes.pop(strike_id(strike), None) is not None
            self._strikes_version += 1
            return existed

    def list_strikes(self) -> list[Strike]:
        with self._lock:
            return list(self._strikes.values())

    def strikes_marker(self) -> str:
        with self._lock:
            return str(self._strikes_version)
