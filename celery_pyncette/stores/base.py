"""The store contract: what every schedule store does, and what each operation raises.

A store keeps one record per scheduled instance, keyed by ``(task, partition, instance)``.
Static tasks have one record under :data:`STATIC_INSTANCE`. Every record carries:

* ``next_run``: when the instance is due next (UTC);
* ``locked_until`` / ``lease`` / ``locked_by``: the current lease, if any;
* ``ready_at``: ``max(next_run, locked_until)`` -- the one time the claim query looks at. An
  instance is claimable when ``ready_at <= now``: due, and unlocked or with an expired lease.

Stores never compute schedules: the caller passes the next run in. Every operation that depends
on time takes ``now`` (an aware UTC datetime) from the caller, so tests drive time and all stores
agree on it. Every method may raise :class:`~celery_pyncette.errors.StoreError` when the backend
fails; the other errors are named per method. Every store refuses the same bad arguments with the
same :class:`ValueError` before it touches its backend (see :mod:`celery_pyncette.stores._checks`):
a limit that is not a positive integer, a lease duration that is not positive, a naive time.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta

from celery_pyncette.errors import LeaseLostError, TaskLockedError
from celery_pyncette.stores._checks import check_claim, check_next_runs
from celery_pyncette.stores._history import Run, Status, check_history
from celery_pyncette.stores._values import (
    STATIC_INSTANCE,
    ClaimedBatch,
    ClaimedRecord,
    Commit,
    InstanceKey,
    InstanceRecord,
    LeaseRef,
    Quarantined,
    RunLog,
    Strike,
    StrikeOperator,
    claimed,
    spec_text,
    strike_from_id,
    strike_id,
)

__all__ = [
    "STATIC_INSTANCE",
    "ClaimedBatch",
    "ClaimedRecord",
    "Commit",
    "InstanceKey",
    "InstanceRecord",
    "LeaseRef",
    "Quarantined",
    "Run",
    "RunLog",
    "Status",
    "Store",
    "Strike",
    "StrikeOperator",
    "claimed",
    "spec_text",
    "strike_from_id",
    "strike_id",
]


class Store(abc.ABC):
    """A schedule store. See the module docstring for the data model.

    Implementations are safe to use from several threads of one process; several processes (beats,
    workers) may use the same backend at once, and the guarantees below hold across them.
    """

    def __init__(self, url: str, *, namespace: str = "pyncette", skip_table_create: bool = False):
        """Remember the configuration; connect lazily, never here (beat builds unused stores).

        ``namespace`` prefixes every table or key, so several apps can share one server.
        ``skip_table_create`` makes :meth:`setup` check for the schema instead of creating it.
        """
        self.url = url
        self.namespace = namespace
        self.skip_table_create = skip_table_create

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Create tables / indexes if the store needs them. Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections this store created. Idempotent; the store may not be used after."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """Called in a forked child before any other call on a store object inherited from the
        parent: drop (never close, never send anything on) the connections inherited from the
        parent, and the locks and threads that are not the child's; the next call reconnects.

        The parent's connections stay the parent's: it keeps using them unharmed. Stores without
        connections (the memory store) need do nothing.
        """

    def claim_due(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> list[ClaimedRecord]:
        """Atomically lease up to ``limit`` instances whose ``ready_at <= now``, oldest first.

        Each returned record carries a fresh ``lease`` token, ``locked_until = now +
        lease_duration`` and ``locked_by = owner``. No instance is returned to two callers while its
        lease is valid, whatever the number of concurrent claimers. A record that cannot be decoded
        never makes the claim raise: it is quarantined and left out (:meth:`claim` reports it).
        """
        return self.claim(task, partition, now, limit, lease_duration, owner).records

    @abc.abstractmethod
    def claim(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> ClaimedBatch:
        """:meth:`claim_due`, reporting the records it quarantined on the way.

        Quarantined records count against ``limit`` (a batch shorter than ``limit`` still means
        nothing more was claimable).
        """

    def claim_batches(
        self,
        task: str,
        partition: int,
        clock: Callable[[], datetime],
        limit: int,
        lease_duration: timedelta,
        owner: str,
        max_batches: int,
    ) -> Generator[ClaimedBatch, None, None]:
        """Claim one task partition batch after batch, as calls of :meth:`claim_due` would.

        Each batch is claimed at the time ``clock()`` reads just before its claim, and yielded with
        that time. The batches stop after ``max_batches``, or after one shorter than ``limit``
        (nothing more was claimable at its time). A store may claim the next batch while the caller
        works on the one it holds (the Redis store sends that claim before it yields); when the
        caller stops early (closes the generator, or drops it), a batch claimed ahead and not yet
        yielded is unlocked, so it is due again at once. Callers close the generator promptly
        (``contextlib.closing``): a claim ahead holds a connection of its own until then.
        Arguments a claim refuses raise :class:`ValueError` here, before any claim.
        """
        check_claim(None, limit, lease_duration)
        return self._claims_one_by_one(
            task, partition, clock, limit, lease_duration, owner, max_batches
        )

    def _claims_one_by_one(
        self,
        task: str,
        partition: int,
        clock: Callable[[], datetime],
        limit: int,
        lease_duration: timedelta,
        owner: str,
        max_batches: int,
    ) -> Generator[ClaimedBatch, None, None]:
        for _ in range(max_batches):
            batch = self.claim(task, partition, clock(), limit, lease_duration, owner)
            yield batch
            if len(batch.records) + len(batch.quarantined) < limit:
                return

    def due_partitions(
        self, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """Which ``(task, partition)`` groups may hold a claimable instance at ``now``.

        The answer is a superset of the groups with an instance whose ``ready_at <= now``; beat
        claims only from those, so an idle tick costs one round trip however many partitions
        there are. This default answers "all of them"; stores override it with one batched or
        pipelined query.
        """
        return set(groups)

    def earliest_ready(self, groups: Sequence[tuple[str, int]]) -> datetime | None:
        """The earliest ``ready_at`` of an instance of these ``(task, partition)`` groups, or
        ``None`` when they hold none. Quarantined instances are left out where the store keeps
        them apart; an answer earlier than the truth is allowed, never a later one.

        A simulation (:mod:`celery_pyncette.testing`) ticks beat at this time instead of every
        poll interval. This default pages through :meth:`list_instances`; stores override it
        with one query.
        """
        earliest: datetime | None = None
        for task, partition in dict.fromkeys(groups):
            after: str | None = None
            while page := self.list_instances(task, partition, 1000, after):
                after = page[-1].key.instance
                for record in page:
                    if earliest is None or record.ready_at < earliest:
                        earliest = record.ready_at
        return earliest

    def server_time(self) -> datetime | None:
        """The store server's clock (aware UTC), or ``None`` when the store has none to offer.

        Beats measure their offset from it, so that every beat judges due times and lease
        expiry by one clock even when the machines' clocks disagree.
        """
        return None

    @abc.abstractmethod
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
        """Finish a leased execution.

        If ``lease`` is still the instance's lease: set ``next_run`` (or delete the instance when it
        is ``None``), release the lock, set ``last_run_at = now`` and ``last_status = status``.
        Raises :class:`LeaseLostError` when the lease does not match or the instance is gone.

        In the same round trip (one statement, script or transaction): the instance's count of
        settled runs grows by one, and ``run``, when given and ``history_size`` is positive, is
        added to its history, newest first, of which at most ``history_size`` entries are kept.
        With ``max_runs``, a commit that brings the count to ``max_runs`` ends the instance:
        a dynamic one is deleted, a static task's record is kept with the next run
        :data:`~celery_pyncette.stores._history.FINISHED` (see
        :func:`~celery_pyncette.stores._history.settled_next_run`). Upserts keep the count and
        the history; deleting the instance drops them. ``ValueError`` (nothing written) for a
        negative ``history_size`` or a ``max_runs`` that is not a positive int.
        """

    def commit_many(self, commits: Sequence[Commit], now: datetime) -> list[InstanceKey]:
        """Commit a batch; return the keys whose lease was lost (the others were committed).

        Stores override this to save round trips; the outcome per item equals :meth:`commit`.
        """
        check_next_runs(now, (item.next_run for item in commits))
        for item in commits:
            check_history(item.history_size, item.max_runs)
        lost: list[InstanceKey] = []
        for item in commits:
            try:
                self.commit(
                    item.key,
                    item.lease,
                    item.next_run,
                    now,
                    item.status,
                    run=item.run,
                    history_size=item.history_size,
                    max_runs=item.max_runs,
                )
            except LeaseLostError:
                lost.append(item.key)
        return lost

    @abc.abstractmethod
    def run_log(self, key: InstanceKey, limit: int) -> RunLog:
        """The instance's count of settled runs and its last ``limit`` history entries, newest
        first (an empty log for an instance that does not exist). An entry that cannot be
        decoded is left out."""

    @abc.abstractmethod
    def unlock(
        self, key: InstanceKey, lease: str, *, run: Run | None = None, history_size: int = 0
    ) -> None:
        """Release the lease and keep ``next_run``, so a due instance is claimable at once.

        ``run``, when given and ``history_size`` is positive, is added to the history in the
        same round trip, as :meth:`commit` adds it (a failed run unlocked to run again); the
        count of settled runs is not changed. Raises :class:`LeaseLostError` when the lease does
        not match or the instance is gone (nothing is written), ``ValueError`` for a negative
        ``history_size``.
        """

    def record_run(self, key: InstanceKey, run: Run, history_size: int) -> bool:
        """Add ``run`` to the instance's history, newest first, keeping at most ``history_size``
        entries, and change nothing else: not the lease, the next run, ``last_run_at`` /
        ``last_status``, nor the count of settled runs. For a run that did not settle: one that
        failed with its lease kept (``FailureMode.NONE``), or one whose lease was lost.

        One round trip, trimmed as :meth:`commit` trims. Returns whether the entry was written:
        ``False`` when the instance does not exist (nothing is written), and with a
        ``history_size`` of 0 (nothing is written, the store is not touched). ``ValueError``
        for a negative ``history_size``.
        """
        check_history(history_size, None)
        if history_size == 0:
            return False
        return self._record_run(key, run, history_size)

    @abc.abstractmethod
    def _record_run(self, key: InstanceKey, run: Run, history_size: int) -> bool:
        """:meth:`record_run` once its arguments are checked (``history_size`` positive)."""

    def unlock_many(self, items: Sequence[LeaseRef]) -> list[InstanceKey]:
        """Unlock a batch; return the keys whose lease was lost."""
        lost: list[InstanceKey] = []
        for key, lease in items:
            try:
                self.unlock(key, lease)
            except LeaseLostError:
                lost.append(key)
        return lost

    @abc.abstractmethod
    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None:
        """Move the lease's expiry to ``until`` (a heartbeat), earlier or later than it was.

        With ``new_lease``, the token is replaced by it in the same atomic write (a worker takes
        the execution lease so): afterwards only ``new_lease`` matches, and a second delivery of the
        message, which carries ``lease``, finds it lost. Raises :class:`LeaseLostError` when the
        lease does not match or the instance is gone. A lease that expired but was not claimed
        again still matches and may be extended: no one else holds the instance, and a concurrent
        claim either changes the token first or sees the new expiry.
        """

    def extend_leases(self, items: Sequence[LeaseRef], until: datetime) -> list[InstanceKey]:
        """Extend a batch of leases to ``until``; return the keys whose lease was lost.

        Each item has the outcome of :meth:`extend_lease` without ``new_lease``. Stores override
        this to save round trips.
        """
        lost: list[InstanceKey] = []
        for key, lease in items:
            try:
                self.extend_lease(key, lease, until)
            except LeaseLostError:
                lost.append(key)
        return lost

    @abc.abstractmethod
    def upsert(
        self,
        record: InstanceRecord,
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> datetime:
        """Create or replace an instance with ``record``'s spec, args and next run, unlocked;
        return the next run it now has.

        Atomic: two concurrent upserts of the same new instance both succeed (the last one wins).
        When the stored instance is locked at ``now`` and ``force`` is false, raises
        :class:`~celery_pyncette.errors.TaskLockedError` and changes nothing. ``last_run_at`` and
        ``last_status`` of an existing instance are kept.

        With ``keep_next_run``, an existing healthy instance whose stored spec equals
        ``record.spec`` (compared on :func:`spec_text`) keeps its stored next run; its args are
        replaced all the same. The comparison and the write are one atomic step in the store, so a
        claim and commit that move the next run meanwhile are never undone by an older value. A
        new instance, a changed spec, a quarantined record or one whose stored next run cannot be
        read takes ``record.next_run`` (a repair).
        """

    def upsert_many(
        self,
        records: Sequence[InstanceRecord],
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> list[InstanceKey]:
        """Upsert a batch; return the keys refused because they were locked (``force`` false).

        Each item has the outcome of :meth:`upsert` (``keep_next_run`` included); a
        :class:`StoreError` part-way leaves the earlier items written. Stores override this to
        save round trips.
        """
        check_next_runs(now, (record.next_run for record in records))
        locked: list[InstanceKey] = []
        for record in records:
            try:
                self.upsert(record, now, force, keep_next_run=keep_next_run)
            except TaskLockedError:
                locked.append(record.key)
        return locked

    @abc.abstractmethod
    def delete(self, key: InstanceKey) -> bool:
        """Remove an instance whatever its lock or quarantine; return whether it existed."""

    @abc.abstractmethod
    def get(self, key: InstanceKey) -> InstanceRecord | None:
        """Return the stored instance, or ``None``.

        Raises :class:`~celery_pyncette.errors.CorruptRecordError` when the stored record cannot
        be decoded (it is not quarantined by this read).
        """

    @abc.abstractmethod
    def quarantine(self, key: InstanceKey, lease: str | None, reason: str, now: datetime) -> bool:
        """Take a record out of the due index until it is repaired; return whether it was.

        With ``lease``, only while that lease still holds it (the caller claimed it and found it
        cannot be computed); without, whatever its lock (the store itself could not decode it).
        ``False`` when the lease was lost or the record is gone. The record stays stored and is
        listed by :meth:`list_quarantined`; :meth:`upsert` replaces it with a healthy, unlocked
        record, :meth:`delete` removes it. Claims and :meth:`due_partitions` no longer see it.
        The lease is dropped: a commit, unlock or heartbeat of it afterwards finds it lost.
        """

    @abc.abstractmethod
    def list_quarantined(self, task: str | None = None, limit: int = 100) -> list[Quarantined]:
        """Up to ``limit`` quarantined records (of ``task``, or of every task), by key."""

    def lease_of(self, key: InstanceKey) -> str | None:
        """The lease token the instance is held under: ``None`` when it is not leased or does
        not exist. A worker reads it before each run. Stores override this to read that one
        field (this default reads the whole record)."""
        record = self.get(key)
        return None if record is None else record.lease

    @abc.abstractmethod
    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> list[InstanceRecord]:
        """Up to ``limit`` instances of one task partition with names ``> after``, by name.

        Paging by name (not by offset) returns every instance exactly once across pages, even while
        instances are claimed and committed between pages. Records that cannot be decoded are
        left out (:meth:`list_quarantined` shows them once quarantined).
        """

    def count_instances(self, task: str, partition: int) -> int:
        """How many instances one task partition holds. Stores override this when cheaper."""
        total, after = 0, None
        while page := self.list_instances(task, partition, 1000, after):
            total += len(page)
            after = page[-1].key.instance
        return total

    @abc.abstractmethod
    def add_strike(self, strike: Strike) -> None:
        """Store a strike and move the strikes marker. Idempotent per rule (:func:`strike_id`):
        adding a rule that is stored replaces its ``reason`` with this one (``None`` clears it).
        ``ValueError`` for a reason that is not valid (see ``_checks.check_strike_reason``)."""

    @abc.abstractmethod
    def remove_strike(self, strike: Strike) -> bool:
        """Remove a strike and move the strikes marker; return whether it existed."""

    @abc.abstractmethod
    def list_strikes(self) -> list[Strike]:
        """Every stored strike, with its reason (``None`` when it has none, as strikes stored
        before reasons existed have not)."""

    @abc.abstractmethod
    def strikes_marker(self) -> str:
        """A cheap value that changes whenever the set of strikes changes (a cache key)."""
