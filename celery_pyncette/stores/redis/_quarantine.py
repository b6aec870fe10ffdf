"""Quarantine on the Redis store: the records a claim cannot read, and the listing of them.

A quarantined instance keeps its hash and its place in the name index; it leaves the ready index
(so claims and polls no longer meet it), loses its lease, and gets an entry ``name -> [since,
reason]`` in its partition's quarantine hash, in the partition's slot: the claim script writes it
in the same step as the claim. The partition is then added to the namespace's set of partitions
with quarantined instances (another slot, so a separate command after the script), which
:func:`list_quarantined` reads. An upsert removes the entry (a repair), a delete too.

The claim script quarantines a candidate whose next run or lock expiry is not an integer: it
cannot tell whether it is due. A candidate it leased whose spec, arguments or times Python cannot
decode is quarantined right after, under the lease just taken (:func:`settle`), and its healthy
batch-mates are returned as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery_pyncette.stores.base import ClaimedRecord, InstanceKey, Quarantined
from celery_pyncette.stores.redis._layout import (
    ClaimReply,
    from_micros,
    instance_key,
    partition_prefix,
    quarantine_index_key,
    quarantine_key,
    text,
    to_micros,
)
from celery_pyncette.stores.redis._scripts import SCRIPTS

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster

#: Longest reason kept (longer ones are cut).
REASON_CHARS = 1000


def quarantine(
    client: redis.Redis | RedisCluster,
    namespace: str,
    key: InstanceKey,
    lease: str | None,
    reason: str,
    now: datetime,
) -> bool:
    """Quarantine one instance (with ``lease``: only while it holds it); whether it was."""
    prefix = partition_prefix(namespace, key.task, key.partition)
    keys = [prefix + b":ready", quarantine_key(prefix), instance_key(prefix, key.instance)]
    args = [key.instance.encode("utf-8"), lease or "", reason[:REASON_CHARS], to_micros(now)]
    if not SCRIPTS["quarantine"](client, keys, args):
        return False
    register(client, namespace, key.task, key.partition)
    return True


def register(client: redis.Redis | RedisCluster, namespace: str, task: str, partition: int) -> None:
    """Note that the partition has quarantined instances (for :func:`list_quarantined`)."""
    member = json.dumps([task, partition], ensure_ascii=False)
    client.sadd(quarantine_index_key(namespace), member.encode("utf-8"))


def settle(
    client: redis.Redis | RedisCluster,
    namespace: str,
    key_of: Callable[[str], InstanceKey],
    now: datetime,
    reply: ClaimReply,
) -> tuple[list[ClaimedRecord], list[Quarantined]]:
    """The records and the quarantined instances of one claim script reply, after quarantining
    the leased candidates Python could not decode."""
    records = [ClaimedRecord(key=key_of(name), **fields) for name, fields in reply.leased]
    quarantined = [Quarantined(key_of(name), reason, now) for name, reason in reply.quarantined]
    if quarantined:
        key = quarantined[0].key
        register(client, namespace, key.task, key.partition)
    for name, lease, reason in reply.undecodable:
        key = key_of(name)
        if quarantine(client, namespace, key, lease, reason, now):
            quarantined.append(Quarantined(key, reason, now))
    return records, quarantined


def list_quarantined(
    client: redis.Redis | RedisCluster, namespace: str, task: str | None, limit: int
) -> list[Quarantined]:
    """Up to ``limit`` quarantined instances (of ``task``), by key: one ``SMEMBERS``, then one
    ``HGETALL`` per partition that has had quarantined instances, pipelined."""
    if limit <= 0:
        return []
    members = client.smembers(quarantine_index_key(namespace))
    parts: list[tuple[str, int]] = sorted(
        {(str(t), int(p)) for t, p in (json.loads(text(m)) for m in members)}
    )
    parts = [part for part in parts if task is None or part[0] == task]
    if not parts:
        return []
    pipe: Any = client.pipeline(transaction=False)
    for part in parts:
        pipe.hgetall(quarantine_key(partition_prefix(namespace, *part)))
    found: list[Quarantined] = []
    for (part_task, partition), entries in zip(parts, pipe.execute(), strict=True):
        for name, value in entries.items():
            since, reason = json.loads(text(value))
            key = InstanceKey(part_task, partition, text(name))
            found.append(Quarantined(key, str(reason), from_micros(since)))
    found.sort(key=lambda q: (q.key.task, q.key.partition, q.key.instance))
    return found[:limit]
