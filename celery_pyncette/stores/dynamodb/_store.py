"""The :class:`DynamoDBStore`: its configuration, its client and the plumbing of every call.

The store's operations live in the modules of their concern (``_claims``, ``_leases``,
``_instances``, ``_quarantine``, ``_strikes``, ``_schema``), which take the store as their
argument; the store checks the arguments (see ``stores/_checks.py``) and hands over.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from celery_pyncette.errors import StoreError, TaskLockedError
from celery_pyncette.stores._checks import check_aware, check_claim, check_limit, check_next_runs
from celery_pyncette.stores._history import Run, check_history
from celery_pyncette.stores.base import (
    ClaimedBatch,
    InstanceKey,
    InstanceRecord,
    LeaseRef,
    Quarantined,
    RunLog,
    Status,
    Store,
    Strike,
)
from celery_pyncette.stores.dynamodb import _claims, _instances, _leases, _runs, _schema, _strikes
from celery_pyncette.stores.dynamodb import _quarantine as quarantines
from celery_pyncette.stores.dynamodb._client import forget_session, new_client
from celery_pyncette.stores.dynamodb._codec import decode_item
from celery_pyncette.stores.dynamodb._items import PK, SK, RefusedError, expression, optional_str
from celery_pyncette.stores.dynamodb._refused import refused_item
from celery_pyncette.stores.dynamodb._url import parse_url

_MAX_SORT_KEY_BYTES, _MAX_HASH_KEY_BYTES = 1024, 2048


class DynamoDBStore(Store):
    """``dynamodb://REGION/TABLE``: one item per instance, claims by conditional ``UpdateItem``."""

    #: botocore settings: a dead endpoint fails within seconds; throttling and 5xx are retried
    #: (``max_attempts`` counts the first attempt too).
    connect_timeout = 2.0
    read_timeout = 5.0
    max_attempts = 4
    #: A claim reads up to ``page_factor * limit`` candidates per index page (16 to 1000).
    page_factor = 2
    #: How many upserts :meth:`upsert_many` sends at once.
    bulk_concurrency = 16
    #: How many partitions :meth:`due_partitions` probes at once.
    poll_concurrency = 16
    #: How long :meth:`setup` waits for a new table to become ACTIVE.
    table_wait_timeout = 120.0

    def __init__(
        self, url: str, *, namespace: str = "pyncette", skip_table_create: bool = False
    ) -> None:
        self.settings = parse_url(url)
        super().__init__(
            url,
            namespace=namespace,
            skip_table_create=skip_table_create or self.settings.skip_table_create,
        )
        self.table = self.settings.table
        self._lock = threading.Lock()
        self._client: Any = None
        self._poll_pool: ThreadPoolExecutor | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        """The boto3 client, created on first use (and again after :meth:`after_fork`)."""
        with self._lock:
            if self._client is None:
                config = Config(
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                    max_pool_connections=32,
                    user_agent_extra="celery-pyncette",
                )
                try:
                    self._client = new_client(
                        region_name=self.settings.region,
                        endpoint_url=self.settings.endpoint_url,
                        config=config,
                    )
                except BotoCoreError as exc:
                    raise StoreError(f"cannot create a DynamoDB client: {exc}") from exc
            return self._client

    def _call(
        self, operation: str, *, subject: str = "", expect: tuple[str, ...] = (), **params: Any
    ) -> dict[str, Any]:
        """Call one DynamoDB API on the table.

        A failed condition or an ``expect``-ed error code raises :class:`RefusedError`; every other
        failure a :class:`StoreError` that chains the botocore error.
        """
        where = f"DynamoDB {operation} on table {self.table!r}"
        try:
            response: dict[str, Any] = getattr(self._connect(), operation)(
                TableName=self.table, **params
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code == "ConditionalCheckFailedException" or code in expect:
                item = refused_item(exc.response, params, self._call)
                raise RefusedError(code, item) from None
            if code == "ResourceNotFoundException":
                hint = "it is created by setup() unless skip_table_create is set"
                raise StoreError(f"{where}: the table does not exist ({hint}): {message}") from exc
            if "exceeded the maximum allowed size" in message:
                raise StoreError(
                    f"{where}: {subject or 'the item'} is too large: DynamoDB refuses items over "
                    f"400 KB (spec, arguments and names together): {message}"
                ) from exc
            if code == "ItemCollectionSizeLimitExceededException":
                raise StoreError(
                    f"{where}: {subject} cannot be stored: its task partition holds 10 GB, "
                    "DynamoDB's limit with a local secondary index; use more partitions"
                ) from exc
            raise StoreError(f"{where} failed: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{where} failed: {exc}") from exc
        return response

    def _partition_id(self, task: str, partition: int) -> str:
        pid = json.dumps([self.namespace, task, partition], ensure_ascii=False)
        if len(pid.encode()) > _MAX_HASH_KEY_BYTES:  # 200-character task names always fit
            raise ValueError(f"task name {task[:80]!r}... is too long for a DynamoDB key")
        return pid

    def _key(self, key: InstanceKey) -> dict[str, dict[str, str]]:
        size = len(key.instance.encode())  # lone surrogates raise UnicodeEncodeError (ValueError)
        if not 1 <= size <= _MAX_SORT_KEY_BYTES:
            raise ValueError(
                f"instance name of {size} UTF-8 bytes: DynamoDB stores 1 to 1024 ({key})"
            )
        return {PK: {"S": self._partition_id(key.task, key.partition)}, SK: {"S": key.instance}}

    def _update(
        self,
        key: InstanceKey,
        update: str,
        condition: str | None,
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "Key": self._key(key),
            "UpdateExpression": update,
            **expression(update, condition),
            **extra,
        }
        if condition:
            params["ConditionExpression"] = condition
        if values:
            params["ExpressionAttributeValues"] = values
        return self._call("update_item", subject=f"instance {key}", **params)

    def _projected_item(self, key: dict[str, Any], projection: str) -> dict[str, Any] | None:
        """The attributes ``projection`` names of one item (a consistent read), or ``None``."""
        response = self._call(
            "get_item",
            Key=key,
            ConsistentRead=True,
            ProjectionExpression=projection,
            **expression(projection),
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _query_partition(
        self, pid: str, limit: int | None, after: str | None, **extra: Any
    ) -> list[dict[str, Any]]:
        """Pages of one partition by sort key, ``> after``, until ``limit`` items or the end."""
        return _instances.query_partition(self, pid, limit, after, **extra)

    def _due_page(
        self, pid: str, now: datetime, size: int, start: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One page of the index: keys of instances with ``ready_at <= now``, oldest first."""
        return _claims.due_page(self, pid, now, size, start)

    def _poller(self) -> ThreadPoolExecutor:
        """This process's thread pool for :meth:`due_partitions`, created on first use."""
        self._connect()  # one client, created before the threads share it
        with self._lock:
            if self._poll_pool is None:
                self._poll_pool = ThreadPoolExecutor(
                    self.poll_concurrency, thread_name_prefix="pyncette-dynamodb-poll"
                )
            return self._poll_pool

    # --- the contract -------------------------------------------------------------------

    def setup(self) -> None:
        _schema.setup(self)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            pool, self._poll_pool = self._poll_pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()

    def after_fork(self) -> None:
        """Drop the parent's client (unclosed: its sockets are the parent's), lock and poll
        threads (they do not run in the child), and the session clients are made from."""
        self._lock, self._client, self._poll_pool = threading.Lock(), None, None
        forget_session()

    def due_partitions(
        self, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """Exactly the groups holding an instance with ``ready_at <= now``.

        DynamoDB has no batched query: one ``Query`` with ``Limit=1`` on the ``ready_at`` index per
        group, ``poll_concurrency`` of them at once, so 32 partitions cost about two round trips of
        wall time, not 32.
        """
        check_aware("now", now)
        return _claims.due_partitions(self, groups, now)

    def claim(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> ClaimedBatch:
        """Claim items one conditional update each; an item whose attributes cannot be decoded
        is quarantined under the lease just taken (see ``_claims.py``)."""
        check_claim(now, limit, lease_duration)
        return _claims.claim(self, task, partition, now, limit, lease_duration, owner)

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
        _leases.commit(self, key, lease, next_run, now, status, run, history_size, max_runs)

    def run_log(self, key: InstanceKey, limit: int) -> RunLog:
        check_limit(limit)
        response = self._call("get_item", Key=self._key(key), ConsistentRead=True)
        return _runs.run_log(response.get("Item"), limit)

    def unlock(
        self, key: InstanceKey, lease: str, *, run: Run | None = None, history_size: int = 0
    ) -> None:
        check_history(history_size, None)
        _leases.unlock(self, key, lease, run, history_size)

    def _record_run(self, key: InstanceKey, run: Run, history_size: int) -> bool:
        return _runs.record_run(self, key, run, history_size)

    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None:
        check_aware("until", until)
        _leases.extend_lease(self, key, lease, until, new_lease)

    def extend_leases(self, items: Sequence[LeaseRef], until: datetime) -> list[InstanceKey]:
        check_aware("until", until)
        return _leases.extend_leases(self, items, until)

    def upsert(
        self,
        record: InstanceRecord,
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> datetime:
        check_next_runs(now, [record.next_run])
        return _instances.upsert(self, record, now, force, keep_next_run)

    def upsert_many(
        self,
        records: Sequence[InstanceRecord],
        now: datetime,
        force: bool = False,
        *,
        keep_next_run: bool = False,
    ) -> list[InstanceKey]:
        """Upsert a batch, ``bulk_concurrency`` requests at a time (DynamoDB has no batched
        conditional update; a transaction would let one locked instance refuse the whole batch)."""
        check_next_runs(now, (record.next_run for record in records))
        if len(records) < 2 or len({r.key for r in records}) < len(records):
            # repeated keys: in order, last wins
            return super().upsert_many(records, now, force, keep_next_run=keep_next_run)

        def upsert_one(record: InstanceRecord) -> InstanceKey | None:
            try:
                self.upsert(record, now, force, keep_next_run=keep_next_run)
            except TaskLockedError:
                return record.key
            return None

        self._connect()  # one client, created before the threads share it
        with ThreadPoolExecutor(min(self.bulk_concurrency, len(records))) as pool:
            outcomes = list(pool.map(upsert_one, records))
        return [key for key in outcomes if key is not None]

    def delete(self, key: InstanceKey) -> bool:
        response = self._call("delete_item", Key=self._key(key), ReturnValues="ALL_OLD")
        if quarantines.SINCE in response.get("Attributes", {}):
            quarantines.forget(self, key)
        return "Attributes" in response

    def get(self, key: InstanceKey) -> InstanceRecord | None:
        response = self._call("get_item", Key=self._key(key), ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else decode_item(key, item)

    def quarantine(self, key: InstanceKey, lease: str | None, reason: str, now: datetime) -> bool:
        check_aware("now", now)
        return quarantines.quarantine(self, key, lease, reason, now)

    def list_quarantined(self, task: str | None = None, limit: int = 100) -> list[Quarantined]:
        return quarantines.list_quarantined(self, task, limit)

    def lease_of(self, key: InstanceKey) -> str | None:
        item = self._projected_item(self._key(key), "#lease")
        return None if item is None else optional_str(item, "lease")

    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> list[InstanceRecord]:
        check_limit(limit)
        return _instances.list_instances(self, task, partition, limit, after)

    def count_instances(self, task: str, partition: int) -> int:
        return _instances.count_instances(self, task, partition)

    def add_strike(self, strike: Strike) -> None:
        _strikes.add_strike(self, strike)

    def remove_strike(self, strike: Strike) -> bool:
        return _strikes.remove_strike(self, strike)

    def list_strikes(self) -> list[Strike]:
        return _strikes.list_strikes(self)

    def strikes_marker(self) -> str:
        return _strikes.strikes_marker(self)
