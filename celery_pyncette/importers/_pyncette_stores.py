"""Reading the raw records of a Pyncette 1.x store: SQLite, PostgreSQL (one SQL table) and Redis.

What Pyncette 1.1 stores, per record (the facts this module relies on):

* **SQLite and PostgreSQL**: one table (``pyncette_tasks`` unless ``sqlite_table_name`` /
  ``postgres_table_name`` said otherwise) with the columns ``name`` (the record's canonical
  name), ``parent_name`` (the canonical name of a dynamic instance's task; NULL for a static task),
  ``execute_after`` (the next run: a POSIX timestamp in SQLite, ``timestamptz`` in PostgreSQL),
  ``locked_until``, ``locked_by`` and ``task_spec`` (the instance's spec as JSON; a ``json`` column
  in PostgreSQL, text in SQLite).
* **Redis**: a hash ``pyncette:<namespace>:task:<canonical name>`` per record (fields ``version``,
  ``execute_after`` as ISO 8601, ``locked_until``, ``locked_by``, ``task_spec``), and per task a
  sorted set ``pyncette:<namespace>:index:<task's canonical name>`` whose members are
  ``<ISO time>_<record key>`` (static tasks share ``pyncette:<namespace>:index``).

A canonical name escapes ``:`` in a name as ``::``; a dynamic instance's is ``<task's>:<instance>``
and a partitioned task's partition is ``<task>:<partition number>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kombu.utils.url import maybe_sanitize_url

from celery_pyncette.importers._specs import ConversionError

#: Pyncette's own rule for its table names (so the name is safe to put in SQL).
_TABLE_NAME = re.compile(r"^[a-z_]+$")

_SQL_DRIVERS = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
_REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as stored: ``parent`` is None for a static task; ``next_run`` and ``spec`` are
    the stored values, not yet decoded (a timestamp, a datetime or an ISO string; JSON text or
    an object)."""

    name: str
    parent: str | None
    next_run: Any
    spec: Any


def describe_source(url: str) -> str:
    return f"Pyncette at {maybe_sanitize_url(url)}"


def read_records(url: str, *, table: str, namespace: str) -> list[RawRecord]:
    """Every record of the Pyncette store at ``url`` (``sqlite:///path``, ``postgresql://...``,
    ``redis://...``); ``ConversionError`` when it cannot be read."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in _SQL_DRIVERS:
        if not _TABLE_NAME.match(table):
            raise ConversionError(
                f"invalid Pyncette table name {table!r}: lower-case letters and underscores only"
            )
        return _read_sql(url, scheme, table)
    if scheme in _REDIS_SCHEMES:
        return _read_redis(url, namespace)
    raise ConversionError(
        f"unsupported Pyncette store URL {maybe_sanitize_url(url)!r}: give sqlite:///PATH, "
        "postgresql://... or redis://..."
    )


# --- SQL ----------------------------------------------------------------------------------------


def _read_sql(url: str, scheme: str, table: str) -> list[RawRecord]:
    import sqlalchemy as sa

    shown = maybe_sanitize_url(url)
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or not os.path.isfile(path):
            raise ConversionError(f"no SQLite database at {path or url!r}")
        # Read-only: never create or change the source.
        target = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        target = _SQL_DRIVERS[scheme] + url[len(scheme) :]
    try:
        engine = sa.create_engine(target)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConversionError(f"cannot open {shown}: {exc}") from None
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                raise ConversionError(
                    f"no table {table} in {shown}: is this Pyncette's database (and "
                    "--pyncette-table right)?"
                )
            rows = sa.table(
                table,
                sa.column("name"),
                sa.column("parent_name"),
                sa.column("execute_after"),
                sa.column("task_spec"),
            )
            query = sa.select(rows).order_by(rows.c.name)
            return [
                RawRecord(str(r.name), r.parent_name, r.execute_after, r.task_spec)
                for r in conn.execute(query)
            ]
    except sa.exc.SQLAlchemyError as exc:
        message = str(exc).splitlines()[0]
        raise ConversionError(f"reading Pyncette's table {table} failed: {message}") from None
    finally:
        engine.dispose()


# --- Redis --------------------------------------------------------------------------------------


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _read_redis(url: str, namespace: str) -> list[RawRecord]:
    try:
        import redis
    except ImportError:
        raise ConversionError(
            "reading Pyncette's Redis store needs the redis package: "
            "pip install 'celery-pyncette[redis]'"
        ) from None
    client = redis.Redis.from_url(url)
    base = f"pyncette:{namespace}:"
    try:
        records: list[RawRecord] = []
        # Dynamic instances, through the index of each task; static tasks through theirs.
        for index, parent in _indexes(client, base):
            for record_key in _index_members(client, index):
                if not record_key.startswith(base + "task:"):
                    continue
                next_run, spec = client.hmget(record_key, "execute_after", "task_spec")
                if next_run is None and spec is None:
                    continue  # removed since the index was read
                name = record_key[len(base + "task:") :]
                records.append(RawRecord(name, parent, _text(next_run), _text(spec)))
        return sorted(records, key=lambda r: r.name)
    finally:
        client.close()


def _indexes(client: Any, base: str) -> Iterator[tuple[str, str | None]]:
    """(index key, parent canonical name or None for the static tasks' index)."""
    yield base + "index", None
    pattern = _glob_escape(base + "index:") + "*"
    for key in sorted(_text(k) for k in client.scan_iter(match=pattern, count=500, _type="zset")):
        yield key, key[len(base + "index:") :]


def _index_members(client: Any, index: str) -> list[str]:
    # A member is "<ISO time>_<record key>"; ISO 8601 times hold no underscore.
    members = (_text(m) for m in client.zrange(index, 0, -1))
    return [m.partition("_")[2] for m in members if "_" in m]


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
