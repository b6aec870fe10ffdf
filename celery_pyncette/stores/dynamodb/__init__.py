"""``dynamodb://REGION/TABLE``: instances in one DynamoDB table, leases by conditional writes.

URL: ``dynamodb://REGION/TABLE[?endpoint_url=http://host:port&skip_table_create=1]``. An empty
region (``dynamodb:///TABLE``) means boto3's default region. Credentials are boto3's ambient ones.

Table layout (see ``docs/stores/dynamodb.md``)::

    partition_id (S, hash key)   JSON [namespace, task, partition]; strikes: [namespace, "#strikes"]
    task_id      (S, range key)  the instance name (1..1024 UTF-8 bytes)
    ready_at     (N)             max(next_run, locked_until), epoch seconds with 6 decimals
    LSI "ready_at"               (partition_id, ready_at), KEYS_ONLY: the claim query
    quarantined_at / _reason     set while quarantined (then ready_at is absent): see
                                 ``_quarantine.py``

A claim queries the index for ``ready_at <= now`` oldest first and takes each candidate with an
``UpdateItem`` conditioned on ``ready_at <= now``; a claim lost to another beat fails that condition
and is skipped (the range is re-read a bounded number of times, then the query pages on: it never
spins on one page). Commit, unlock and heartbeat are conditioned on the lease token, upsert on the
lock having expired.

DynamoDB offers no clock to read (no ``TIME`` command, no ``now()`` in expressions), so
:meth:`~celery_pyncette.stores.base.Store.server_time` is ``None``: beats and workers on DynamoDB
judge due times and leases by their own clocks, which must be kept in sync (NTP).

The package's private modules, one concern each: ``_url`` (the URL), ``_client`` (the boto3
session), ``_items`` (attribute names and encodings), ``_codec`` (items into records),
``_refused`` (the item a refused write met), ``_api`` (what the modules use of the store),
``_store`` (the store and its plumbing), ``_schema`` (the table), ``_claims`` (claims and polls),
``_leases`` (commit, unlock, heartbeats), ``_instances`` (upserts and listings), ``_quarantine``
and ``_strikes``.
"""

from __future__ import annotations

from celery_pyncette.stores.dynamodb._store import DynamoDBStore
from celery_pyncette.stores.dynamodb._url import DynamoDBSettings, parse_url

__all__ = ["DynamoDBSettings", "DynamoDBStore", "parse_url"]
