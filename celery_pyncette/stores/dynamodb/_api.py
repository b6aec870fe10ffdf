"""What the DynamoDB store's private modules use of the store: its table plumbing.

A :class:`Protocol`, so that the modules take the store as an argument without importing it (no
import cycle). The plumbing stays on the store: its tests (and anyone subclassing it) hook into
``_update`` and ``_due_page``, and the modules call them through the store so those hooks apply.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.dynamodb._url import DynamoDBSettings


class Table(Protocol):
    """The :class:`~celery_pyncette.stores.dynamodb.DynamoDBStore` as its modules see it."""

    namespace: str
    table: str
    settings: DynamoDBSettings
    skip_table_create: bool
    page_factor: int
    table_wait_timeout: float

    def _call(
        self, operation: str, *, subject: str = "", expect: tuple[str, ...] = (), **params: Any
    ) -> dict[str, Any]: ...

    def _update(
        self,
        key: InstanceKey,
        update: str,
        condition: str | None,
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]: ...

    def _key(self, key: InstanceKey) -> dict[str, dict[str, str]]: ...

    def _partition_id(self, task: str, partition: int) -> str: ...

    def _due_page(
        self, pid: str, now: datetime, size: int, start: dict[str, Any] | None
    ) -> dict[str, Any]: ...

    def _projected_item(self, key: dict[str, Any], projection: str) -> dict[str, Any] | None: ...

    def _query_partition(
        self, pid: str, limit: int | None, after: str | None, **extra: Any
    ) -> list[dict[str, Any]]: ...

    def _poller(self) -> ThreadPoolExecutor: ...

    def quarantine(
        self, key: InstanceKey, lease: str | None, reason: str, now: datetime
    ) -> bool: ...
