"""``dynamodb://REGION/TABLE``: instances in one DynamoDB table, leases by conditional writes.

URL: ``dynamodb://REGION/TABLE[?endpoint_url=http://host:port&skip_table_create=1]``. An empty
region (``dynamodb:///TABLE``) means boto3's default region. Credentials are boto3's ambient ones.

Table layout (see ``docs/stores/dynamodb.md``)::

    partition_id (S, hash key)   JSON [namespace, task, partition]; strikes: [namespace, "#strikes"]
    task_id      (S, range key)  the instance name (1..1024 UTF-8 bytes)
    ready_at     (N)             max(next_run, locked_until), epoch seconds with 6 decimals
    LSI "ready_at"               (partition_id, ready_at), KEYS_ONLY: the claim query
    quarantined_at / _reason     set while quarantined (then ready_at is absent): see
                                 ``_dynamodb_quarantine.py``

A claim queries the index for ``ready_at <= now`` oldest first and takes each candidate with an
``UpdateItem`` conditioned on ``ready_at <= now``; a claim lost to another beat fails that condition
and is skipped (the range is re-read a bounded number of times, then the query pages on: it never
spins on one page). Commit, unlock and heartbeat are conditioned on the lease token, upsert on the
lock having expired.

DynamoDB offers no clock to read (no ``TIME`` command, no ``now()`` in expressions), so
:meth:`~celery_pyncette.stores.base.Store.server_time` is ``None``: beats and workers on DynamoDB
judge due times and leases by their own clocks, which must be kept in sync (NTP).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from celery_pyncette.errors import (
    CorruptRecordError,
    LeaseLostError,
    StoreError,
    TaskLockedError,
)
from celery_pyncette.stores import _dynamodb_quarantine as quarantines
from celery_pyncette.stores._checks import check_aware, check_claim, check_limit, check_next_runs
from celery_pyncette.stores._dynamodb_items import RefusedError as _RefusedError
from celery_pyncette.stores._dynamodb_items import holds as _holds
from celery_pyncette.stores._dynamodb_items import number as _number
from celery_pyncette.stores._dynamodb_leases import extend_lease, extend_leases
from celery_pyncette.stores._dynamodb_quarantine import decode_item
from celery_pyncette.stores._dynamodb_url import DynamoDBSettings, parse_url
from celery_pyncette.stores.base import (
    ClaimedBatch,
    ClaimedRecord,
    InstanceKey,
    InstanceRecord,
    LeaseRef,
    Quarantined,
    Status,
    Store,
    Strike,
    claimed,
    strike_from_id,
    strike_id,
)
from celery_pyncette.stores.dynamodb_refused import refused_item

__all__ = ["DynamoDBSettings", "DynamoDBStore", "parse_url"]

_PK, _SK, _INDEX = "partition_id", "task_id", "ready_at"
_MARKER = "marker"  # sort key of the strikes marker item; strike items use 64 hex digits
_MAX_SORT_KEY_BYTES, _MAX_HASH_KEY_BYTES = 1024, 2048
_NAME_TOKEN = re.compile(r"#\w+")
#: Expression placeholder -> attribute name (every attribute goes through a placeholder).
_NAMES = {
    "#pk": _PK,
    "#sk": _SK,
    "#ready": "ready_at",
    "#next": "next_run",
    "#until": "locked_until",
    "#lease": "lease",
    "#by": "locked_by",
    "#last": "last_run_at",
    "#status": "last_status",
    "#spec": "spec",
    "#args": "args",
    "#v": "version",
    "#release": "release_id",
    "#qreason": "quarantine_reason",
    "#qsince": "quarantined_at",
}


def _optional_str(item: Mapping[str, Any], name: str) -> str | None:
    return str(item[name]["S"]) if name in item else None


def _expression(*expressions: str | None) -> dict[str, Any]:
    """``ExpressionAttributeNames`` for exactly the placeholders the expressions use."""
    used = {token for text in expressions if text for token in _NAME_TOKEN.findall(text)}
    if not used:
        return {}
    return {"ExpressionAttributeNames": {token: _NAMES[token] for token in sorted(used)}}


_session_lock = threading.Lock()
_session: Any = None


def _new_client(**options: Any) -> Any:
    """A DynamoDB client from this module's boto3 session (created once: loading the service
    model is the slow part of a client). A session is not thread-safe: clients are made under a
    lock; the clients themselves are."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("dynamodb", **options)


def _forget_session() -> None:
    """In a forked child: a fresh session and lock (one held at fork time would never be
    released here)."""
    global _session_lock, _session
    _session_lock, _session = threading.Lock(), None


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
        self._strikes_pid = json.dumps([namespace, "#strikes"], ensure_ascii=False)
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
                    self._client = _new_client(
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

        A failed condition or an ``expect``-ed error code raises :class:`_RefusedError`; every other
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
                raise _RefusedError(code, item) from None
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
        return {_PK: {"S": self._partition_id(key.task, key.partition)}, _SK: {"S": key.instance}}

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
            **_expression(update, condition),
            **extra,
        }
        if condition:
            params["ConditionExpression"] = condition
        if values:
            params["ExpressionAttributeValues"] = values
        return self._call("update_item", subject=f"instance {key}", **params)

    # --- schema -----------------------------------------------------------------------------

    def setup(self) -> None:
        if not self.skip_table_create:
            attributes = [(_PK, "S"), (_SK, "S"), (_INDEX, "N")]
            # ResourceInUse: it exists already (another beat may be creating it right now)
            with contextlib.suppress(_RefusedError):
                self._call(
                    "create_table",
                    expect=("ResourceInUseException",),
                    AttributeDefinitions=[
                        {"AttributeName": name, "AttributeType": kind} for name, kind in attributes
                    ],
                    KeySchema=[
                        {"AttributeName": _PK, "KeyType": "HASH"},
                        {"AttributeName": _SK, "KeyType": "RANGE"},
                    ],
                    LocalSecondaryIndexes=[
                        {
                            "IndexName": _INDEX,
                            "KeySchema": [
                                {"AttributeName": _PK, "KeyType": "HASH"},
                                {"AttributeName": _INDEX, "KeyType": "RANGE"},
                            ],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                        }
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
        self._wait_until_active()

    def _wait_until_active(self) -> None:
        deadline = time.monotonic() + self.table_wait_timeout
        pause = 0.05
        while True:
            try:
                table = self._call("describe_table", expect=("ResourceNotFoundException",))
            except _RefusedError:
                raise StoreError(
                    f"DynamoDB table {self.table!r} does not exist in region "
                    f"{self.settings.region or '(boto3 default)'}; create it (see "
                    "docs/stores/dynamodb.md) or drop skip_table_create"
                ) from None
            description = table["Table"]
            status = description.get("TableStatus")
            if status == "ACTIVE":
                self._check_schema(description)
                return
            if status not in {"CREATING", "UPDATING"}:
                raise StoreError(f"DynamoDB table {self.table!r} is {status}, not ACTIVE")
            if time.monotonic() + pause > deadline:
                raise StoreError(
                    f"DynamoDB table {self.table!r} still {status} after "
                    f"{self.table_wait_timeout:.0f} s"
                )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def _check_schema(self, description: Mapping[str, Any]) -> None:
        def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
            return [(k["AttributeName"], k["KeyType"]) for k in schema]

        types = {
            a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]
        }
        indexes = {
            i["IndexName"]: keys(i["KeySchema"])
            for i in description.get("LocalSecondaryIndexes", [])
        }
        problems = []
        if keys(description["KeySchema"]) != [(_PK, "HASH"), (_SK, "RANGE")]:
            problems.append(f"key schema must be {_PK} (hash), {_SK} (range)")
        if indexes.get(_INDEX) != [(_PK, "HASH"), (_INDEX, "RANGE")]:
            problems.append(f"a local secondary index {_INDEX!r} on ({_PK}, {_INDEX}) is missing")
        if (types.get(_PK), types.get(_SK), types.get(_INDEX, "N")) != ("S", "S", "N"):
            problems.append(f"{_PK} and {_SK} must be strings, {_INDEX} a number")
        if problems:
            raise StoreError(
                f"DynamoDB table {self.table!r} has another schema: {'; '.join(problems)}"
            )

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
        _forget_session()

    # --- claims and leases ------------------------------------------------------------------

    def _due_page(
        self, pid: str, now: datetime, size: int, start: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One page of the index: keys of instances with ``ready_at <= now``, oldest first."""
        condition = "#pk = :pk AND #ready <= :now"
        params: dict[str, Any] = {
            "IndexName": _INDEX,
            "KeyConditionExpression": condition,
            **_expression(condition),
            "ExpressionAttributeValues": {":pk": {"S": pid}, ":now": _number(now)},
            "ScanIndexForward": True,
            "ConsistentRead": True,
            "Limit": size,
        }
        if start is not None:
            params["ExclusiveStartKey"] = start
        return self._call("query", **params)

    def due_partitions(
        self, groups: Sequence[tuple[str, int]], now: datetime
    ) -> set[tuple[str, int]]:
        """Exactly the groups holding an instance with ``ready_at <= now``.

        DynamoDB has no batched query: one ``Query`` with ``Limit=1`` on the ``ready_at`` index per
        group, ``poll_concurrency`` of them at once, so 32 partitions cost about two round trips of
        wall time, not 32.
        """
        check_aware("now", now)
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return set()

        def probe(group: tuple[str, int]) -> bool:
            page = self._due_page(self._partition_id(*group), now, 1, None)
            return bool(page.get("Items"))

        if len(wanted) == 1:
            return {wanted[0]} if probe(wanted[0]) else set()
        flags = list(self._poller().map(probe, wanted))
        return {group for group, due in zip(wanted, flags, strict=True) if due}

    def _poller(self) -> ThreadPoolExecutor:
        """This process's thread pool for :meth:`due_partitions`, created on first use."""
        self._connect()  # one client, created before the threads share it
        with self._lock:
            if self._poll_pool is None:
                self._poll_pool = ThreadPoolExecutor(
                    self.poll_concurrency, thread_name_prefix="pyncette-dynamodb-poll"
                )
            return self._poll_pool

    def claim_due(
        self,
        task: str,
        partition: int,
        now: datetime,
        limit: int,
        lease_duration: timedelta,
        owner: str,
    ) -> list[ClaimedRecord]:
        return self.claim(task, partition, now, limit, lease_duration, owner).records

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
        is quarantined under the lease just taken (see ``_dynamodb_quarantine.py``)."""
        check_claim(now, limit, lease_duration)
        pid = self._partition_id(task, partition)
        until = _number(now + lease_duration)
        update = "SET #until = :until, #ready = :until, #lease = :lease, #by = :owner"
        condition = "attribute_exists(#pk) AND #ready <= :now"
        leased: list[ClaimedRecord] = []
        bad: list[Quarantined] = []
        start: dict[str, Any] | None = None
        contended, rereads = False, 0
        while len(leased) + len(bad) < limit:
            page = self._due_page(pid, now, min(max(self.page_factor * limit, 16), 1000), start)
            names = [item[_SK]["S"] for item in page.get("Items", [])]
            stale = False
            for position in range(len(names)):
                if contended:  # others claim this range too: pick at random, not in their wake
                    other = random.randrange(position, len(names))
                    names[position], names[other] = names[other], names[position]
                key = InstanceKey(task, partition, names[position])
                lease = uuid.uuid4().hex
                values = {
                    ":until": until,
                    ":now": _number(now),
                    ":lease": {"S": lease},
                    ":owner": {"S": owner},
                }
                try:
                    item = self._update(
                        key,
                        update,
                        condition,
                        values,
                        ReturnValues="ALL_NEW",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )["Attributes"]
                except _RefusedError as refused:
                    if _holds(refused.item, "lease", lease):
                        item = refused.item  # ours: botocore retried a write whose reply was lost
                    else:
                        # Lost to another claimer (or deleted) since the query: not an error. The
                        # rest of the page is likely stale too: read the same range again (claimed
                        # items have left it), a bounded number of times; then page on.
                        contended = True
                        if rereads < limit:
                            rereads += 1
                            stale = True
                            break
                        continue
                try:
                    leased.append(claimed(decode_item(key, item)))
                except CorruptRecordError as exc:
                    if self.quarantine(key, lease, exc.reason, now):
                        bad.append(Quarantined(key, exc.reason, now))
                if len(leased) + len(bad) == limit:
                    break
            if stale:
                continue
            start = page.get("LastEvaluatedKey")
            if start is None:
                break
        return ClaimedBatch(now, leased, bad)

    def commit(
        self,
        key: InstanceKey,
        lease: str,
        next_run: datetime | None,
        now: datetime,
        status: Status = "success",
    ) -> None:
        check_next_runs(now, [next_run])
        condition = "#lease = :lease"
        release = uuid.uuid4().hex  # marks this call's write, should botocore have to retry it
        try:
            if next_run is None:
                self._call(
                    "delete_item",
                    Key=self._key(key),
                    ConditionExpression=condition,
                    **_expression(condition),
                    ExpressionAttributeValues={":lease": {"S": lease}},
                )
                return
            self._update(
                key,
                "SET #next = :next, #ready = :next, #last = :now, #status = :status, "
                "#release = :release REMOVE #until, #lease, #by",
                condition,
                {
                    ":next": _number(next_run),
                    ":now": _number(now),
                    ":status": {"S": status},
                    ":lease": {"S": lease},
                    ":release": {"S": release},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _RefusedError as refused:
            if not _holds(refused.item, "release_id", release):  # else our write, retried
                raise LeaseLostError(f"lease {lease} of {key} is lost") from None

    def unlock(self, key: InstanceKey, lease: str) -> None:
        release = uuid.uuid4().hex  # marks this call's write, should botocore have to retry it
        try:
            self._update(
                key,
                "SET #ready = #next, #release = :release REMOVE #until, #lease, #by",
                "#lease = :lease",
                {":lease": {"S": lease}, ":release": {"S": release}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _RefusedError as refused:
            if not _holds(refused.item, "release_id", release):  # else our write, retried
                raise LeaseLostError(f"lease {lease} of {key} is lost") from None

    def extend_lease(
        self, key: InstanceKey, lease: str, until: datetime, new_lease: str | None = None
    ) -> None:
        check_aware("until", until)
        extend_lease(self, key, lease, until, new_lease)

    def extend_leases(self, items: Sequence[LeaseRef], until: datetime) -> list[InstanceKey]:
        check_aware("until", until)
        return extend_leases(self, items, until)

    # --- instances --------------------------------------------------------------------------

    def upsert(self, record: InstanceRecord, now: datetime, force: bool = False) -> None:
        check_next_runs(now, [record.next_run])
        values: dict[str, Any] = {
            ":spec": {"S": json.dumps(dict(record.spec))},
            ":args": {"S": json.dumps(dict(record.args))},
            ":next": _number(record.next_run),
        }
        condition, extra = None, {"ReturnValues": "UPDATED_OLD"}
        if not force:  # a new instance, an unlocked one, or one whose lease has expired
            condition = (
                "attribute_not_exists(#pk) OR attribute_not_exists(#until) OR #until <= :now"
            )
            values[":now"] = _number(now)
            extra["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            old = self._update(
                record.key,
                "SET #spec = :spec, #args = :args, #next = :next, #ready = :next "
                "REMOVE #until, #lease, #by, #qreason, #qsince",
                condition,
                values,
                **extra,
            ).get("Attributes", {})
        except _RefusedError as refused:
            until = (refused.item or {}).get("locked_until")
            raise TaskLockedError(f"{record.key} is locked until {until}") from None
        if quarantines.SINCE in old:
            quarantines.forget(self, record.key)  # repaired

    def upsert_many(
        self, records: Sequence[InstanceRecord], now: datetime, force: bool = False
    ) -> list[InstanceKey]:
        """Upsert a batch, ``bulk_concurrency`` requests at a time (DynamoDB has no batched
        conditional update; a transaction would let one locked instance refuse the whole batch)."""
        check_next_runs(now, (record.next_run for record in records))
        if len(records) < 2 or len({r.key for r in records}) < len(records):
            return super().upsert_many(records, now, force)  # repeated keys: in order, last wins

        def upsert_one(record: InstanceRecord) -> InstanceKey | None:
            try:
                self.upsert(record, now, force)
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
        return None if item is None else _optional_str(item, "lease")

    def _projected_item(self, key: dict[str, Any], projection: str) -> dict[str, Any] | None:
        """The attributes ``projection`` names of one item (a consistent read), or ``None``."""
        response = self._call(
            "get_item",
            Key=key,
            ConsistentRead=True,
            ProjectionExpression=projection,
            **_expression(projection),
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _query_partition(
        self, pid: str, limit: int | None, after: str | None, **extra: Any
    ) -> list[dict[str, Any]]:
        """Pages of one partition by sort key, ``> after``, until ``limit`` items or the end."""
        condition = "#pk = :pk" if after is None else "#pk = :pk AND #sk > :after"
        values: dict[str, Any] = {":pk": {"S": pid}}
        if after is not None:
            values[":after"] = {"S": after}
        pages: list[dict[str, Any]] = []
        seen = 0
        start: dict[str, Any] | None = None
        while limit is None or seen < limit:
            params: dict[str, Any] = {
                "KeyConditionExpression": condition,
                **_expression(condition),
                "ExpressionAttributeValues": values,
                "ConsistentRead": True,
                **extra,
            }
            if limit is not None:
                params["Limit"] = limit - seen
            if start is not None:
                params["ExclusiveStartKey"] = start
            page = self._call("query", **params)
            pages.append(page)
            seen += int(page.get("Count", 0))
            start = page.get("LastEvaluatedKey")
            if start is None:
                break
        return pages

    def list_instances(
        self, task: str, partition: int, limit: int, after: str | None = None
    ) -> list[InstanceRecord]:
        check_limit(limit)
        pages = self._query_partition(self._partition_id(task, partition), limit, after)
        records = []
        for item in (item for page in pages for item in page.get("Items", [])):
            with contextlib.suppress(CorruptRecordError):  # left out: see list_quarantined
                records.append(decode_item(InstanceKey(task, partition, item[_SK]["S"]), item))
        return records

    def count_instances(self, task: str, partition: int) -> int:
        pid = self._partition_id(task, partition)
        pages = self._query_partition(pid, None, None, Select="COUNT")
        return sum(int(page.get("Count", 0)) for page in pages)

    # --- strikes ----------------------------------------------------------------------------

    def _strike_key(self, sort_key: str) -> dict[str, dict[str, str]]:
        return {_PK: {"S": self._strikes_pid}, _SK: {"S": sort_key}}

    def _move_strikes_marker(self) -> None:
        update = "ADD #v :one"
        self._call(
            "update_item",
            Key=self._strike_key(_MARKER),
            UpdateExpression=update,
            **_expression(update),
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    @staticmethod
    def _strike_sort_key(strike: Strike) -> str:
        return hashlib.sha256(strike_id(strike).encode()).hexdigest()

    def add_strike(self, strike: Strike) -> None:
        item = self._strike_key(self._strike_sort_key(strike))
        item["strike"] = {"S": strike_id(strike)}
        self._call("put_item", subject=f"strike {strike}", Item=item)
        self._move_strikes_marker()

    def remove_strike(self, strike: Strike) -> bool:
        key = self._strike_key(self._strike_sort_key(strike))
        response = self._call("delete_item", Key=key, ReturnValues="ALL_OLD")
        self._move_strikes_marker()
        return "Attributes" in response

    def list_strikes(self) -> list[Strike]:
        return [
            strike_from_id(item["strike"]["S"])
            for page in self._query_partition(self._strikes_pid, None, None)
            for item in page.get("Items", [])
            if item[_SK]["S"] != _MARKER
        ]

    def strikes_marker(self) -> str:
        item = self._projected_item(self._strike_key(_MARKER), "#v") or {}
        return str(item.get("version", {}).get("N", "0"))
