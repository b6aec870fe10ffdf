"""Instance rows: read field by field (one undecodable row fails only itself), and written.

The store selects ``spec``, ``args`` and the times without SQLAlchemy's type processing
(:func:`readable_columns`) and decodes each row in Python (:func:`decode`): a row whose spec is not
JSON, or whose next run is not a time, raises :class:`~celery_pyncette.errors.CorruptRecordError`
for that row alone, where a processed column would fail the whole result (a claimed batch, a
listing page). What can be undecodable differs per server:

* SQLite stores any text in any column: spec, args and every time can be garbage;
* MySQL/MariaDB accept the zero date ``0000-00-00`` (unless ``NO_ZERO_DATE`` is set), which
  PyMySQL returns as text;
* PostgreSQL types every column, but ``timestamptz`` holds ``infinity``, which psycopg cannot
  return: those times are read as ``NULL`` (a next run then is undecodable; an infinite lock
  expiry or last run reads as none).

The last run is informational (shown, never used to schedule): one that cannot be read reads as
none on every server, and does not make the row undecodable.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, LargeBinary, Table, case, cast, func, type_coerce
from sqlalchemy.types import NullType

from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.stores.base import ClaimedRecord, InstanceKey, InstanceRecord, spec_text
from celery_pyncette.stores.sql._quarantine import cleared_values
from celery_pyncette.stores.sql._schema import INSTANCE_BYTES, TASK_BYTES

#: Columns kept as JSON text, decoded to objects by :func:`decode`.
JSON_COLUMNS = ("spec", "args")
#: Columns holding times, decoded by :func:`decode`.
TIME_COLUMNS = ("next_run", "locked_until", "last_run_at")
#: The columns a record is made of (``ready_at`` and the quarantine marker are not part of it).
RECORD_COLUMNS = (
    "task",
    "partition",
    "instance",
    *JSON_COLUMNS,
    *TIME_COLUMNS,
    "lease",
    "locked_by",
    "last_status",
)


@functools.lru_cache(maxsize=256)
def readable_columns(table: Table, dialect_name: str) -> tuple[ColumnElement[Any], ...]:
    """The record columns of ``table``, labelled by name, with spec, args and times read as the
    driver returns them (see the module docstring). Built once per table."""
    out: list[ColumnElement[Any]] = []
    for name in RECORD_COLUMNS:
        column: ColumnElement[Any] = table.c[name]
        if dialect_name == "sqlite" and name in _SQLITE_AS_BYTES:
            # sqlite3 fails the whole fetch on text that is not UTF-8: read these as bytes.
            out.append(type_coerce(cast(column, LargeBinary), NullType()).label(name))
            continue
        if name in TIME_COLUMNS:
            if dialect_name == "postgresql":
                column = case((func.isfinite(column), column))
            column = type_coerce(column, NullType())
        elif name in JSON_COLUMNS:
            column = type_coerce(column, NullType())
        out.append(column.label(name))
    return tuple(out)


#: Columns SQLite returns as bytes, decoded by :func:`decode` (text that is not UTF-8 is garbage
#: there like any other).
_SQLITE_AS_BYTES = frozenset({*JSON_COLUMNS, *TIME_COLUMNS, "lease", "locked_by", "last_status"})


_DECODE: Any = object()  # "read this field from the row"
_read_json = json.JSONDecoder().raw_decode


class _UndecodableError(Exception):
    """One field cannot be decoded; the message names it."""


R = TypeVar("R", bound=InstanceRecord)


def decode(row: Any) -> InstanceRecord:
    """The record of a row read with :func:`readable_columns`. Raises
    :class:`CorruptRecordError` naming the first field that cannot be decoded."""
    return _decode(InstanceRecord, row, _DECODE, _DECODE, _DECODE)


def decode_claimed(row: Any, locked_until: datetime, lease: str, locked_by: str) -> ClaimedRecord:
    """:func:`decode` for a row a claim just leased: the lease fields given replace the row's."""
    return _decode(ClaimedRecord, row, locked_until, lease, locked_by)


def _decode(record: type[R], row: Any, locked_until: Any, lease: Any, locked_by: Any) -> R:
    """On the claim's hot path: kept to direct calls."""
    try:
        return record(
            key=InstanceKey(row.task, row.partition, row.instance),
            next_run=_time(row.next_run, "next_run", required=True),  # type: ignore[arg-type]
            spec=_object(row.spec, "spec"),
            args=_object(row.args, "args"),
            locked_until=_time(row.locked_until, "locked_until")
            if locked_until is _DECODE
            else locked_until,
            lease=_text(row.lease) if lease is _DECODE else lease,
            locked_by=_text(row.locked_by) if locked_by is _DECODE else locked_by,
            last_run_at=_last_run(row.last_run_at),
            last_status=_text(row.last_status),
        )
    except _UndecodableError as exc:
        key = InstanceKey(row.task, row.partition, row.instance)
        raise CorruptRecordError(key, str(exc)) from None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value  # type: ignore[no-any-return]


def _object(value: Any, name: str) -> Any:
    try:
        document = value.decode("utf-8") if isinstance(value, bytes) else value
        try:  # raw_decode reads one value at half the cost of json.loads
            parsed, end = _read_json(document)
        except ValueError:
            end = -1
        if end != len(document):  # leading or trailing text: json.loads decides
            parsed = json.loads(document)
    except (TypeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise _UndecodableError(f"{name} is not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise _UndecodableError(f"{name} is not a JSON object (a {type(parsed).__name__})")
    return parsed


def _last_run(value: Any) -> datetime | None:
    """The last run is informational: one that cannot be read reads as none (never run)."""
    try:
        return _time(value, "last_run_at")
    except _UndecodableError:
        return None


def _time(value: Any, name: str, *, required: bool = False) -> datetime | None:
    if value is None:
        if required:
            raise _UndecodableError(f"{name} is not a finite time (NULL or infinite)")
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(value, (str, bytes)):
        moment = _parse_time(value)
        if moment is not None:
            return moment
    shown = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    raise _UndecodableError(f"{name} is not a time: {shown[:40]!r}")


@functools.lru_cache(maxsize=4096)
def _parse_time(value: str | bytes) -> datetime | None:
    """A stored time text as an aware UTC datetime, or ``None``. Memoized: a claimed batch often
    shares its due time."""
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def written_row(record: InstanceRecord) -> dict[str, Any]:
    """The columns an upsert writes: the record's schedule, unlocked."""
    key = record.key
    _check_length("task", key.task, TASK_BYTES)
    _check_length("instance", key.instance, INSTANCE_BYTES)
    return {
        "task": key.task,
        "partition": key.partition,
        "instance": key.instance,
        # Key order sorted at every level: the column then holds spec_text(spec), which an
        # upsert keeping the next run compares.
        "spec": json.loads(spec_text(record.spec)),
        "args": dict(record.args),
        "next_run": record.next_run,
        "ready_at": record.next_run,
        "lease": None,
        "locked_by": None,
        "locked_until": None,
        **cleared_values(),
    }


def _check_length(what: str, name: str, limit: int) -> None:
    if len(name.encode("utf-8")) > limit:
        raise ValueError(f"{what} name is longer than {limit} UTF-8 bytes: {name[:40]!r}...")
