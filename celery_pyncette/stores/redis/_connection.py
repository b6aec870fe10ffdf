"""The Redis store's connection: its client, the errors it raises, and how scripts are run.

The client is made on first use (never in the constructor), from the store URL, or is the one
passed in, which is then never closed. A ``redis+sentinel://`` URL is parsed in the constructor
(a bad one raises :class:`ConfigurationError` before any I/O); its client is the primary's, found
through the sentinels again on every new connection (see ``_sentinel.py``).
:meth:`Connection.after_fork` drops a client made here in a forked child without closing it (its
sockets are the parent's); redis-py's own pools reset a given client's connections in a child.
Every Redis failure is raised as :class:`StoreError` naming the action, the original chained, and
the next call connects again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.redis._scripts import SCRIPTS
from celery_pyncette.stores.redis._sentinel import SCHEME as SENTINEL_SCHEME
from celery_pyncette.stores.redis._sentinel import SentinelURL, parse_sentinel_url

Client: TypeAlias = "redis.Redis | RedisCluster"

#: Connection defaults; a query parameter of the URL (``?socket_timeout=1``) wins.
_CLIENT_DEFAULTS: dict[str, Any] = {"socket_connect_timeout": 5.0, "socket_timeout": 10.0}


class Connection:
    """The client of one :class:`~celery_pyncette.stores.redis.RedisStore`."""

    def __init__(self, url: str, client: Client | None) -> None:
        self.url = url
        scheme = url.partition("://")[0].lower()  # urlsplit may raise on a bad netloc
        self._cluster_url = scheme == "redis+cluster"
        self._sentinel_url: SentinelURL | None = None
        if scheme == SENTINEL_SCHEME and client is None:
            self._sentinel_url = parse_sentinel_url(url)
        self._sentinel: Sentinel | None = None
        self._given = client
        self._client: Client | None = client
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> Client:
        if self._sentinel_url is not None:
            client, self._sentinel = self._sentinel_url.connect(_CLIENT_DEFAULTS)
            return client
        if self._cluster_url:
            parts = urlsplit(self.url)
            plain = urlunsplit(("redis", parts.netloc, parts.path, parts.query, parts.fragment))
            return RedisCluster.from_url(plain, retry=Retry(NoBackoff(), 0), **_CLIENT_DEFAULTS)
        return redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **_CLIENT_DEFAULTS)

    def client(self) -> Client:
        """The client, created on first use (and again after :meth:`after_fork`)."""
        if self._closed:
            raise StoreError("the RedisStore is closed")
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._connect()
                except (RedisError, RedisClusterException) as exc:
                    raise StoreError(
                        f"cannot connect to Redis at {self.safe_url()}: {exc}"
                    ) from exc
            return self._client

    def after_fork(self) -> None:
        """Drop the parent's client and lock: the next call builds a client with a pool of its
        own. The parent's client is not closed (its sockets are the parent's); a client passed in
        is kept, its redis-py pools reset themselves in a child."""
        self._lock = threading.Lock()
        if self._given is None:
            self._client = None
            self._sentinel = None

    def safe_url(self) -> str:
        if self._sentinel_url is not None:
            return self._sentinel_url.safe()
        parts = urlsplit(self.url)
        if parts.scheme.lower() == SENTINEL_SCHEME:  # a client was given: the URL is unused
            return f"{parts.scheme}://"
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Raise every Redis failure as StoreError, the original chained."""
        try:
            yield
        except (RedisError, RedisClusterException) as exc:
            raise StoreError(
                f"Redis store ({self.safe_url()}) failed to {action}: {self._describe(exc)}"
            ) from exc

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, MasterNotFoundError) and self._sentinel_url is not None:
            # redis-py's message repeats every sentinel client's whole repr
            return (
                f"MasterNotFoundError: no sentinel named a primary for "
                f"{self._sentinel_url.service_name!r} (none reachable, or the primary is down "
                "and not replaced yet)"
            )
        return f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        """Close the client made here (a client passed in is left open). Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            sentinel, self._sentinel = self._sentinel, None
            self._closed = True
        if client is not None and self._given is None:
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                client.close()
        if sentinel is not None:
            # each sentinel's client (Sentinel.close() is missing from older redis-py)
            for node in sentinel.sentinels:
                with contextlib.suppress(RedisError, OSError):
                    node.close()

    def script(self, name: str, keys: Sequence[bytes], args: Sequence[Any], action: str) -> Any:
        client = self.client()
        with self.errors(action):
            return SCRIPTS[name](client, keys, args)

    def run_batches(
        self,
        script_name: str,
        calls: list[tuple[list[int], list[bytes], list[Any]]],
        keys: list[InstanceKey],
        action: str,
    ) -> list[InstanceKey]:
        """Run one batch script per call; return the keys whose flag came back 0 (lease lost)."""
        replies = self.run_scripts(script_name, calls, action)
        lost = {
            index
            for (indexes, _, _), flags in zip(calls, replies, strict=True)
            for index, flag in zip(indexes, flags, strict=True)
            if not flag
        }
        return [key for index, key in enumerate(keys) if index in lost]

    def run_scripts(
        self,
        script_name: str,
        calls: list[tuple[list[int], list[bytes], list[Any]]],
        action: str,
    ) -> list[Any]:
        """Run one script call per (indexes, keys, args); return the replies in call order.

        On plain Redis every call goes in one pipeline (one round trip); on a cluster each call
        goes to the node of its partition's slot (redis-py's cluster pipeline refuses scripts).
        """
        script = SCRIPTS[script_name]
        client = self.client()
        replies: list[Any]
        with self.errors(action):
            if len(calls) > 1 and not isinstance(client, RedisCluster):
                pipe = client.pipeline(transaction=False)
                for _, call_keys, args in calls:
                    pipe.evalsha(script.sha, len(call_keys), *call_keys, *args)
                replies = pipe.execute(raise_on_error=False)
                for n, reply in enumerate(replies):
                    if isinstance(reply, NoScriptError):
                        replies[n] = script(client, calls[n][1], calls[n][2])
                    elif isinstance(reply, Exception):
                        raise reply
            else:
                replies = [script(client, call_keys, args) for _, call_keys, args in calls]
        return replies
