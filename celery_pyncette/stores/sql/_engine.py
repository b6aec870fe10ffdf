"""Connections: which driver serves a URL, the store's engine (pool), and driver errors.

The engine is created on first use, never in the constructor. A process that forks (Celery's
prefork pool, a daemonising beat) must not share pooled sockets with its parent: the store's
``after_fork`` calls :meth:`LazyEngine.after_fork` in the child, which replaces the pool without
closing the parent's connections.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from celery_pyncette.errors import ConfigurationError
from celery_pyncette.stores.sql._history import SQLITE_FUNCTION, keep_lines

#: The URL drivers SQLStore serves, and the SQLAlchemy driver each one runs on.
DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
}

#: Seconds a connection attempt, or (SQLite) a wait for the write lock, may take.
CONNECT_TIMEOUT = 10
SQLITE_BUSY_TIMEOUT = 15.0
#: Seconds a MySQL socket read or write may block before the call fails (a daemon must not hang).
MYSQL_IO_TIMEOUT = 60

#: Execution options read by the SQLite ``begin`` hook: take the write lock at BEGIN; or emit no
#: BEGIN at all (one read statement is a transaction of its own).
WRITE_OPTION = "pyncette_write"
NO_BEGIN_OPTION = "pyncette_no_begin"
#: Seconds a pooled connection may sit unused before it is pinged on checkout.
PING_AFTER_IDLE = 1.0


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for a store URL, with its driver resolved; no I/O."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(f"pyncette_url: {url!r} is not a valid SQL URL ({exc})") from exc
    driver = parsed.drivername.lower()
    if driver not in DRIVERS:
        known = ", ".join(f"{name}://" for name in DRIVERS)
        raise ConfigurationError(f"SQLStore does not serve {driver}:// URLs (known: {known})")
    parsed = parsed.set(drivername=DRIVERS[driver])
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in {"", ":memory:"} or "mode=memory" in database:
            raise ConfigurationError(
                "SQLStore needs an SQLite file (sqlite:///path/to/file.db) that beats and workers "
                "share; for an in-process store use memory://"
            )
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event, not the sqlite3 module, emit BEGIN (see its SQLite docs).
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function(SQLITE_FUNCTION, 2, keep_lines, deterministic=True)
        cursor = dbapi_connection.cursor()
        try:
            # WAL: readers never block the writer; several processes can share the file.
            cursor.execute("PRAGMA journal_mode=WAL")
            # Durable against crashes of the process; a power cut may lose the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock at BEGIN (waiting up to busy_timeout), so
        # it can never fail half-way because another process wrote in between.
        options = conn.get_execution_options()
        if options.get(NO_BEGIN_OPTION, False):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN")

    return engine


def _postgres_engine(url: URL, application_name: str) -> Engine:
    connect_args: dict[str, Any] = {}
    if "application_name" not in url.query:
        connect_args["application_name"] = application_name[:63]
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    return create_engine(url, connect_args=connect_args)


def _mysql_engine(url: URL, application_name: str) -> Engine:
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    connect_args: dict[str, Any] = {"program_name": application_name}
    for name, value in (
        ("connect_timeout", CONNECT_TIMEOUT),
        ("read_timeout", MYSQL_IO_TIMEOUT),
        ("write_timeout", MYSQL_IO_TIMEOUT),
    ):
        if name not in url.query:
            connect_args[name] = value
    return create_engine(
        url,
        pool_recycle=3600,
        # No gap locks: a claim locks the rows it takes, not the ranges it scans.
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when it sat unused for
    :data:`PING_AFTER_IDLE` seconds; a dead one is replaced before the caller sees it.

    This is ``pool_pre_ping`` for the connections that can have gone stale unnoticed (a server
    restart or an idle timeout during a quiet spell) without its round trip before every
    statement of a busy worker. A connection that dies while in use costs that one call, as it
    would with ``pool_pre_ping``; the pool then drops every connection opened before.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise


def build_engine(url: URL, application_name: str) -> Engine:
    """A new engine for ``url`` (no connection is opened yet)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(url)
    elif backend == "postgresql":
        engine = _postgres_engine(url, application_name)
    else:
        engine = _mysql_engine(url, application_name)
    _ping_after_idle(engine)
    return engine


class LazyEngine:
    """The store's engine, created on first use; a new pool after a fork."""

    def __init__(self, url: URL, application_name: str) -> None:
        self.url = url
        self.application_name = application_name
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def get(self) -> Engine:
        """The engine, created on first use."""
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._engine is None:
                self._engine = build_engine(self.url, self.application_name)
            return self._engine

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pooled connections unclosed (they are the
        parent's), and the lock (one held at fork time would never be released here)."""
        self._lock = threading.Lock()
        if self._engine is not None:
            self._engine.dispose(close=False)

    def dispose(self) -> None:
        """Close the pooled connections; the next :meth:`get` starts afresh."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()


def _mysql_errno(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_retryable(exc: DBAPIError) -> bool:
    """A deadlock or serialisation failure: the server rolled back; running again is safe."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in {"40P01", "40001"} or _mysql_errno(exc) in {1205, 1213}


def is_missing_table(exc: SQLAlchemyError) -> bool:
    """The statement named a table that does not exist."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "42P01" or _mysql_errno(exc) == 1146:
        return True
    return "no such table" in str(exc.orig)
