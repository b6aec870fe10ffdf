"""The Redis store: see the package docstring for its data model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

from redis.cluster import RedisCluster

from celery_pyncette.errors import (
    ConfigurationError,
    CorruptRecordError,
    LeaseLostError,
    TaskLockedError,
)
from celery_pyncette.stores import _history as history
from celery_pyncette.stores._checks import (
    check_aware,
    check_claim,
    check_limit,
    check_next_runs,
)
from celery_pyncette.stores.base import (
    ClaimedBatch,
    ClaimedRecord,
    Commit,
    InstanceKey,
    InstanceRecord,
    LeaseRef,
    Quarantined,
    RunLog,
    Status,
    Store,
    Strike,
)
from celery_pyncette.stores.redis import _quarantine
from celery_pyncette.stores.redis import _strikes as redis_strikes
from celery_pyncette.stores.redis._ahead import SPARE, PartitionClaims
from celery_pyncette.stores.redis._connection import Client, Connection
from celery_pyncette.stores.redis._layout import (
    BATCH_CHUNK,
    LEASE_FIELD,
    ClaimReply,
    FieldError,
    by_partition,
    claim_script_call,
    claimed_records,
    encode_record,
    from_micros,
    instance_key,
    partition_prefix,
    quarantine_key,
    record_fields,
    strikes_keys,
    text,
    to_micros,
)
from celery_pyncette.stores.redis._leases import extend_calls, lost_keys
from celery_pyncette.stores.redis._scripts import SCRIPTS
from celery_pyncette.stores.redis._settings import check_server_settings
from celery_pyncette.stores.redis._settle import commit_calls, unlock_calls

log = logging.getLogger("celery_pyncette.stores.redis")


#: The most candidates one claim script looks at, and how many failed rounds a claim tolerates.
_CLAIM_CHUNK = 1000
_CLAIM_ROUNDS = 16


class RedisStore(Store):
    """A store on Redis (``redis://``, ``rediss://``), on the primary that Redis Sentinel names
    (``redis+sentinel://``) or on Redis Cluster (``redis+cluster://``).

    ``client`` is an optional ready ``redis.Redis`` or ``redis.cluster.RedisCluster``; the store
    then uses it instead of connecting to ``url`` and never closes it. The store connects lazily, on
    its first call; after :meth:`after_fork` it builds a new client (redis-py's own pools reset a
    given client's connections after a fork). Every Redis failure is raised as
    :class:`StoreError` (the original chained) and the next call connects again.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "pyncette",
        skip_table_create: bool = False,
        client: Client | None = None,
    ) -> None:
        super().__init__(url, namespace=namespace, skip_table_create=skip_table_create)
        if not isinstance(namespace, str) or not namespace or "{" in namespace or "}" in namespace:
            raise ConfigurationError(
                f"RedisStore namespace {namespace!r}: expected a non-empty string without braces"
            )
        scheme = url.partition("://")[0].lower()  # urlsplit may raise on a bad netloc
        if scheme not in {"redis", "rediss", "redis+cluster", "redis+sentinel"}:
            raise ConfigurationError(f"RedisStore cannot use {url!r}: not a redis URL")
        self._connection = Connection(url, client)
        self._strike_keys = strikes_keys(namespace)

    # --- connection -----------------------------------------------------------------------------

    def _redis(self) -> Client:
        """The client, created on first use (and again after :meth:`after_fork`)."""
        return self._connection.client()

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Raise every Redis failure as StoreError, the original chained."""
        return self._connection.errors(action)

    def after_fork(self) -> None:
        """Drop the parent's client and lock: the next call builds a client with a pool of its
        own. The parent's client is not closed (its sockets are the parent's); a client passed in
        is kept, its redis-py pools reset themselves in a child."""
        self._connection.after_fork()

    def close(self) -> None:
        """Close the client this store created (a client passed in is left open). Idempotent."""
        self._connection.close()

    def setup(self) -> None:
        """Check the connection, load the scripts and warn about settings that lose schedules.

        Redis has no schema to create, so ``skip_table_create`` changes nothing here.
        """
        client = self._redis()
        with self._errors("set up"):
            client.ping()
            for script in SCRIPTS.values():
                client.script_load(script.text)
        check_server_settings(client)

    # --- keys -----------------------------------------------------------------------------------

    def _prefix(self, task: str, partition: int) -> bytes:
        return partition_prefix(self.namespace, task, partition)

    # --- claims ---------------------------------------------------------------------------------

    def claim(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> ClaimedBatch:
        """Claim scripts over candidates from the ready index; see ``_quarantine.py`` for the
        records they quarantine."""
        check_claim(now, limit, lease_duration)
        client = self._redis()
        prefix = self._prefix(task, partition)
        ready = prefix + b":ready"
        now_us = to_micros(now)
        expiry = str(to_micros(now + lease_duration))
        claimed: list[ClaimedRecord] = []
        quarantined: list[Quarantined] = []
        fruitless = 0
        with self._errors(f"claim {task!r} partition {partition}"):
            while len(claimed) + len(quarantined) < limit and fruitless < _CLAIM_ROUNDS:
                wanted = min(limit - len(claimed) - len(quarantined), _CLAIM_CHUNK)
                # Read a few more candidates than wanted: concurrent claimers may take some.
                fetch = wanted + min(wanted, SPARE)
                candidates: list[Any] = client.zrangebyscore(
                    ready, "-inf", now_us, start=0, num=fetch
                )
                if not candidates:
                    break
                got = self._claim_candidates(
                    client, prefix, candidates, wanted, now_us, expiry, owner
                )
                records, bad = self._settle(task, partition, now, got)
                claimed += records
                quarantined += bad
                if len(candidates) < fetch and got.taken == len(candidates):
                    break  # every due instance was read, and all of them are taken now
                fruitless = 0 if got.taken else fruitless + 1
        return ClaimedBatch(now, claimed, quarantined)

    def _settle(
        self, task: str, partition: int, now: datetime, reply: ClaimReply
    ) -> tuple[list[ClaimedRecord], list[Quarantined]]:
        client = self._redis()
        with self._errors(f"quarantine in {task!r} partition {partition}"):
            return _quarantine.settle(
                client,
                self.namespace,
                lambda instance: InstanceKey(task, partition, instance),
                now,
                reply,
            )

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
        """On plain Redis, each batch's claim script is sent before the previous batch is
        yielded (see ``_ahead.py``). On a cluster, where a partition's slot may move between
        shards during the stream, batches are claimed one at a time, as ``claim_due`` does."""
        check_claim(None, limit, lease_duration)
        client = self._redis()
        if isinstance(client, RedisCluster) or not 0 < limit <= _CLAIM_CHUNK:
            return super().claim_batches(
                task, partition, clock, limit, lease_duration, owner, max_batches
            )
        claims = PartitionClaims(
            client,
            self._prefix(task, partition),
            lambda instance: InstanceKey(task, partition, instance),
            clock,
            limit,
            lease_duration,
            owner,
            errors=lambda action: self._errors(f"{action} {task!r} partition {partition}"),
            claim=lambda now, wanted: self.claim(
                task, partition, now, wanted, lease_duration, owner
            ),
            settle=lambda now, reply: self._settle(task, partition, now, reply),
            unlock=self.unlock_many,
        )
        return claims.batches(max_batches)

    @staticmethod
    def _claim_candidates(
        client: Client,
        prefix: bytes,
        candidates: list[Any],
        wanted: int,
        now_us: int,
        expiry: str,
        owner: str,
    ) -> ClaimReply:
        encoded = [c.encode("utf-8") if isinstance(c, str) else c for c in candidates]
        keys, args = claim_script_call(prefix, encoded, now_us, expiry, owner, wanted)
        return claimed_records(SCRIPTS["claim"](client, keys, args), encoded)

    def due_partitions(
        self, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """Exactly the groups holding an instance with ``ready_at <= now``.

        Each group costs one ``ZRANGEBYSCORE ready -inf now LIMIT 0 1`` (``O(log N)``). On plain
        Redis they all run in one read-only script call (one round trip); on a cluster, where a
        script may only touch one slot, they go in one pipeline that redis-py splits per node.
        """
        check_aware("now", now)
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return set()
        client = self._redis()
        now_us = to_micros(now)
        ready = [self._prefix(task, partition) + b":ready" for task, partition in wanted]
        flags: list[Any]
        if isinstance(client, RedisCluster):
            with self._errors("poll the due partitions"):
                pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
                for key in ready:
                    pipe.zrangebyscore(key, "-inf", now_us, start=0, num=1)
                flags = pipe.execute()
        else:
            calls: list[tuple[list[int], list[bytes], list[Any]]] = [
                ([], ready[start : start + BATCH_CHUNK], [now_us])
                for start in range(0, len(ready), BATCH_CHUNK)
            ]
            replies = self._connection.run_scripts("due", calls, "poll the due partitions")
            flags = [flag for reply in replies for flag in reply]
        return {group for group, flag in zip(wanted, flags, strict=True) if flag}

    def server_time(self) -> datetime | None:
        """Redis ``TIME`` (on a cluster, one node's): aware UTC with microseconds."""
        client = self._redis()
        with self._errors("read the server time"):
            seconds, micros = client.time()
        return from_micros(int(seconds) * 1_000_000 + int(micros))

    # --- commit, unlock, extend -----------------------------------------------------------------

    def commit(
        self,
        key: InstanceKey,
        lease: str,
        next_run: datetime | None,
        now: datetime,
        status: Status = "success",
        *,
        run: history.Run | None = None,
        history_size: int = 0,
        max_runs: int | None = None,
    ) -> None:
        item = Commit(key, lease, next_run, status, run, history_size, max_runs)
        if self.commit_many([item], now):
            raise LeaseLostError(f"lease {lease} of {key} is lost")

    def commit_many(self, commits: Sequence[Commit], now: datetime) -> list[InstanceKey]:
        """One script call per task partition (per 500 items); one round trip on plain Redis.
        The history entry and the count of settled runs are written by the same script."""
        check_next_runs(now, (item.next_run for item in commits))
        for item in commits:
            history.check_history(item.history_size, item.max_runs)
        if not commits:
            return []
        calls = commit_calls(self._prefix, commits, now)
        return self._connection.run_batches("commit", calls, [c.key for c in commits], "commit")

    def run_log(self, key: InstanceKey, limit: int) -> RunLog:
        check_limit(limit)
        client = self._redis()
        record = instance_key(self._prefix(key.task, key.partition), key.instance)
        with self._errors("read a run history"):
            count, lines = client.hmget(record, ["c", "h"])
        return RunLog(int(count or 0), history.decoded_runs(history.history_lines(lines), limit))

    def unlock(
        self, key: InstanceKey, lease: str, *, run: history.Run | None = None, history_size: int = 0
    ) -> None:
        history.check_history(history_size, None)
        calls = unlock_calls(self._prefix, [(key, lease, run, history_size)])
        if self._connection.run_batches("unlock", calls, [key], "unlock"):
            raise LeaseLostError(f"lease {lease} of {key} is lost")

    def _record_run(self, key: InstanceKey, run: history.Run, history_size: int) -> bool:
        """One ``record.lua`` call on the instance's hash alone."""
        keys = [instance_key(self._prefix(key.task, key.partition), key.instance)]
        args = [history.run_to_json(run).encode("utf-8"), str(history_size)]
        return bool(self._connection.script("record", keys, args, "record a run"))

    def unlock_many(self, items: Sequence[LeaseRef]) -> list[InstanceKey]:
        """One script call per task partition (per 500 items); one round trip on plain Redis."""
        if not items:
            return []
        calls = unlock_calls(self._prefix, [(key, lease, None, 0) for key, lease in items])
        return self._connection.run_batches("unlock", calls, [key for key, _ in items], "unlock")

    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None:
        check_aware("until", until)
        calls = extend_calls(self._prefix, [(key, lease, new_lease)], until, BATCH_CHUNK)
        if lost_keys(calls, self._connection.run_scripts("extend", calls, "extend a lease"), [key]):
            raise LeaseLostError(f"lease {lease} of {key} is lost")

    def extend_leases(self, items: Sequence[LeaseRef], until: datetime) -> list[InstanceKey]:
        """One script call per task partition (per 500 items); one round trip on plain Redis."""
        check_aware("until", until)
        calls = extend_calls(self._prefix, [(k, t, None) for k, t in items], until, BATCH_CHUNK)
        replies = self._connection.run_scripts("extend", calls, "extend leases")
        return lost_keys(calls, replies, [key for key, _ in items])

    # --- instances ------------------------------------------------------------------------------

    def upsert(
        self,
        record: InstanceRecord,
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> datetime:
        ((_, written, moment),) = self._upsert_batches([record], now, force, keep_next_run)
        if not written:
            raise TaskLockedError(f"{record.key} is locked until {moment.isoformat()}")
        return moment

    def upsert_many(
        self,
        records: Sequence[InstanceRecord],
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> list[InstanceKey]:
        """One script call per task partition (per 500 records), pipelined on plain Redis: one
        round trip for a whole batch. A key given twice ends with its last record."""
        outcomes = self._upsert_batches(records, now, force, keep_next_run)
        return [key for key, written, _ in outcomes if not written]

    def _upsert_batches(
        self, records: Sequence[InstanceRecord], now: datetime, force: bool, keep: bool
    ) -> list[tuple[InstanceKey, bool, datetime]]:
        """Write ``records``; return, in their order, each one's key, whether it was written, and
        the next run it now has (written) or its lock expiry (refused as locked)."""
        check_next_runs(now, (record.next_run for record in records))
        if not records:
            return []
        encoded = [encode_record(record) for record in records]  # every ValueError before any write
        head = [to_micros(now), "1" if force else "0", "1" if keep else "0"]
        calls = []
        for part, items in by_partition(records, lambda r: r.key):
            prefix = self._prefix(*part)
            keys = [prefix + b":ready", prefix + b":names", quarantine_key(prefix)]
            args: list[Any] = list(head)
            for index, record in items:
                keys.append(instance_key(prefix, record.key.instance))
                args += encoded[index]
            calls.append(([i for i, _ in items], keys, args))
        replies = self._connection.run_scripts("upsert", calls, "write instances")
        outcomes: list[tuple[InstanceKey, bool, datetime] | None] = [None] * len(records)
        for (indexes, _, _), entries in zip(calls, replies, strict=True):
            for index, (flag, moment) in zip(indexes, entries, strict=True):
                outcomes[index] = (records[index].key, int(flag) == 1, from_micros(moment))
        return [outcome for outcome in outcomes if outcome is not None]

    def delete(self, key: InstanceKey) -> bool:
        prefix = self._prefix(key.task, key.partition)
        keys = [prefix + b":ready", prefix + b":names", instance_key(prefix, key.instance)]
        keys.append(quarantine_key(prefix))
        return bool(
            self._connection.script("delete", keys, [key.instance.encode("utf-8")], "delete")
        )

    def get(self, key: InstanceKey) -> InstanceRecord | None:
        client = self._redis()
        prefix = self._prefix(key.task, key.partition)
        with self._errors("read an instance"):
            fields = client.hgetall(instance_key(prefix, key.instance))
        if not fields:
            return None
        try:
            return InstanceRecord(key=key, **record_fields(fields))
        except FieldError as exc:
            raise CorruptRecordError(key, str(exc)) from None

    def quarantine(self, key: InstanceKey, lease: str | None, reason: str, now: datetime) -> bool:
        check_aware("now", now)
        client = self._redis()
        with self._errors("quarantine an instance"):
            return _quarantine.quarantine(client, self.namespace, key, lease, reason, now)

    def list_quarantined(self, task: str | None = None, limit: int = 100) -> list[Quarantined]:
        client = self._redis()
        with self._errors("list quarantined instances"):
            return _quarantine.list_quarantined(client, self.namespace, task, limit)

    def lease_of(self, key: InstanceKey) -> str | None:
        client = self._redis()
        prefix = self._prefix(key.task, key.partition)
        with self._errors("read a lease"):
            lease = client.hget(instance_key(prefix, key.instance), LEASE_FIELD)
        return text(lease) if lease else None

    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> list[InstanceRecord]:
        check_limit(limit)
        client = self._redis()
        prefix = self._prefix(task, partition)
        low = b"-" if after is None else b"(" + after.encode("utf-8")
        with self._errors("list instances"):
            names: list[bytes | str] = client.zrangebylex(
                prefix + b":names", low, b"+", start=0, num=limit
            )
            if not names:
                return []
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(instance_key(prefix, text(name)))
            rows = pipe.execute()
        records = []
        for name, row in zip(names, rows, strict=True):
            if row:  # else deleted between the two reads
                with contextlib.suppress(FieldError):  # left out: see list_quarantined
                    key = InstanceKey(task, partition, text(name))
                    records.append(InstanceRecord(key=key, **record_fields(row)))
        return records

    def count_instances(self, task: str, partition: int) -> int:
        client = self._redis()
        with self._errors("count instances"):
            return int(client.zcard(self._prefix(task, partition) + b":names"))

    # --- strikes (celery_pyncette.stores.redis._strikes) ---------------------------------------

    def add_strike(self, strike: Strike) -> None:
        redis_strikes.add(self._connection, self._strike_keys, strike)

    def remove_strike(self, strike: Strike) -> bool:
        return redis_strikes.remove(self._connection, self._strike_keys, strike)

    def list_strikes(self) -> list[Strike]:
        return redis_strikes.listed(self._connection, self._strike_keys)

    def strikes_marker(self) -> str:
        return redis_strikes.marker(self._connection, self._strike_keys)
