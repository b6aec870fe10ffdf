"""The SQL schema of one namespace: three tables and the column types that make them portable.

``{namespace}_instances`` holds one row per scheduled instance, ``{namespace}_strikes`` one row per
strike and ``{namespace}_meta`` named counters (the strikes change marker). The column types hide
what differs between servers:

* :class:`UTCDateTime` stores microsecond UTC times (``timestamptz`` on PostgreSQL,
  ``DATETIME(6)`` on MySQL/MariaDB, fixed-width ISO text on SQLite) and returns aware UTC values;
* :class:`KeyText` stores task and instance names so that they compare byte-wise, which for UTF-8
  is code point order, case-sensitive, as in Python (``COLLATE "C"`` on PostgreSQL, ``VARBINARY``
  on MySQL/MariaDB, whose ``utf8mb4`` keys would neither fit the index nor tell ``Bill`` from
  ``bill``; SQLite's default ``BINARY`` collation already does);
* :class:`JSONText` keeps ``spec`` and ``args`` as JSON text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.types import TypeEngine

from celery_pyncette.errors import ConfigurationError

#: Longest task name, in UTF-8 bytes (definitions allow 200 characters).
TASK_BYTES = 800
#: Longest instance name, in UTF-8 bytes.
INSTANCE_BYTES = 1024

_NAMESPACE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


def validate_namespace(namespace: str) -> str:
    """Return ``namespace`` if it can prefix table names; raise :class:`ConfigurationError`."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ConfigurationError(
            f"pyncette namespace {namespace!r} is not a valid SQL table prefix "
            "(a letter or _, then up to 40 letters, digits or _)"
        )
    return namespace


def _is_mysql(dialect: Dialect) -> bool:
    return dialect.name in {"mysql", "mariadb"}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime with microseconds, on every server."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return postgresql.TIMESTAMP(timezone=True)
        if _is_mysql(dialect):
            return mysql.DATETIME(fsp=6)
        # "YYYY-MM-DD HH:MM:SS.ffffff": fixed width, so text order is time order.
        return sqlite.DATETIME()  # type: ignore[no-untyped-call]

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"store times must be timezone-aware (UTC), got {value!r}")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class KeyText(TypeDecorator[str]):
    """A task or instance name: compared and ordered by code point, case-sensitive."""

    impl = Text
    cache_ok = True

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return Text(collation="C")
        if _is_mysql(dialect):
            return mysql.VARBINARY(self.max_bytes)
        return Text()

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and _is_mysql(dialect):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return value  # type: ignore[no-any-return]


class JSONText(TypeDecorator[Any]):
    """A JSON document kept as text (``MEDIUMTEXT`` on MySQL, whose ``TEXT`` stops at 64 KiB)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if _is_mysql(dialect):
            return mysql.MEDIUMTEXT()
        return Text()

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


_MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


@dataclass(frozen=True)
class Schema:
    """The tables of one namespace."""

    metadata: MetaData
    instances: Table
    strikes: Table
    meta: Table

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.instances, self.strikes, self.meta)


def build_schema(namespace: str) -> Schema:
    """The tables of ``namespace`` (validated); builds objects only, touches no database."""
    ns = validate_namespace(namespace)
    metadata = MetaData()
    instances = Table(
        f"{ns}_instances",
        metadata,
        Column("task", KeyText(TASK_BYTES), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("instance", KeyText(INSTANCE_BYTES), primary_key=True),
        Column("spec", JSONText, nullable=False),
        Column("args", JSONText, nullable=False),
        Column("next_run", UTCDateTime, nullable=False),
        Column("ready_at", UTCDateTime, nullable=False),
        Column("locked_until", UTCDateTime, nullable=True),
        Column("lease", String(64), nullable=True),
        Column("locked_by", Text, nullable=True),
        Column("last_run_at", UTCDateTime, nullable=True),
        Column("last_status", Text, nullable=True),
        # Set while the row is quarantined (see _quarantine.py); added to older tables by setup().
        Column("quarantined_at", UTCDateTime, nullable=True),
        Column("quarantine_reason", Text, nullable=True),
        # The count of settled runs and the run history (JSON texts, one a line, newest first),
        # written by each commit; added to older tables by setup().
        Column("runs", Integer, nullable=True),
        Column(
            "history", Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=True
        ),
        # Partial on PostgreSQL (the predicate always holds): only statements bounding ready_at
        # (claims, polls) can use it. Before its first ANALYZE, PostgreSQL's planner rates this
        # index and the primary key alike for a key lookup, and it could pick this one and read
        # a whole partition to find one instance.
        Index(
            f"{ns}_instances_ready",
            "task",
            "partition",
            "ready_at",
            postgresql_where=text("ready_at IS NOT NULL"),
        ),
        # Partial where the server has them: only quarantined rows, a handful, are indexed.
        Index(
            f"{ns}_instances_quarantined",
            "quarantined_at",
            postgresql_where=text("quarantined_at IS NOT NULL"),
            sqlite_where=text("quarantined_at IS NOT NULL"),
        ),
        **_MYSQL_TABLE_OPTIONS,
    )
    strikes = Table(
        f"{ns}_strikes",
        metadata,
        # sha256 of stores.base.strike_id: a strike's value may be too long for a key column.
        Column("id", String(64), primary_key=True),
        Column("strike", Text, nullable=False),
        # Added to older tables by setup(); NULL for strikes stored before reasons existed.
        Column("reason", Text, nullable=True),
        **_MYSQL_TABLE_OPTIONS,
    )
    meta = Table(
        f"{ns}_meta",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("value", BigInteger, nullable=False),
        **_MYSQL_TABLE_OPTIONS,
    )
    return Schema(metadata, instances, strikes, meta)
