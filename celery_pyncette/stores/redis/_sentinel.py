"""``redis+sentinel://`` URLs: parsed without I/O, and the client they describe.

The form (close to the ``redis+sentinel://`` URLs of redis-sentinel-url and to kombu's and
Celery's ``sentinel://`` transport options, which name the master ``master_name``)::

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...][/db]?service_name=NAME[&...]

The hosts are the sentinels (port 26379 by default); ``user``/``password`` authenticate to the
primary (and to nothing else); ``db`` is the database on the primary (default 0). Query options:
:data:`OPTIONS`. The client is redis-py's ``Sentinel(...).master_for(service_name)``: its pool asks
the sentinels for the primary on every new connection, and a connection that meets a demoted
primary (``READONLY``) or a dead one is dropped, so the next call reaches the new primary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from celery_pyncette.errors import ConfigurationError

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be > 0")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be >= 0")
    return number


def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


#: Query option -> its parser. ``master_name`` is kombu's and Celery's name of ``service_name``.
OPTIONS: dict[str, Callable[[str], Any]] = {
    "service_name": _text,
    "master_name": _text,
    "sentinel_username": _text,
    "sentinel_password": _text,
    "min_other_sentinels": _non_negative_int,
    "socket_timeout": _positive_float,
    "socket_connect_timeout": _positive_float,
    "health_check_interval": _non_negative_int,
}


@dataclass(frozen=True)
class SentinelURL:
    """What a ``redis+sentinel://`` URL says; :meth:`connect` builds its client."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    min_other_sentinels: int = 0
    #: Connection options of the primary; the ``socket_*`` ones also apply to the sentinels.
    options: dict[str, float | int] = field(default_factory=dict)

    def safe(self) -> str:
        """The URL without credentials (for messages and logs)."""
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
        return f"{SCHEME}://{hosts}/{self.db}?service_name={quote(self.service_name)}"

    def connect(self, defaults: dict[str, Any]) -> tuple[redis.Redis, Sentinel]:
        """The primary's client and the Sentinel that finds it (no I/O yet: redis-py connects on
        the first command). ``defaults`` are connection options the URL's own override. Neither the
        client nor the sentinels retry: a failed call raises and the next one connects again."""
        chosen = {**defaults, **self.options}
        to_sentinels: dict[str, Any] = {
            key: value for key, value in chosen.items() if key.startswith("socket_")
        }
        to_sentinels["retry"] = Retry(NoBackoff(), 0)
        if self.sentinel_username is not None:
            to_sentinels["username"] = self.sentinel_username
        if self.sentinel_password is not None:
            to_sentinels["password"] = self.sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(self.sentinels),
            min_other_sentinels=self.min_other_sentinels,
            sentinel_kwargs=to_sentinels,
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            self.service_name,
            db=self.db,
            username=self.username,
            password=self.password,
            retry=Retry(NoBackoff(), 0),
            **chosen,
        )
        return client, sentinel


def _fail(url: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"redis+sentinel URL {_redacted(url)!r}: {problem}")


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, hosts = rest.rpartition("@")
    return f"{scheme}{sep}***@{hosts}" if at and credentials else url


def _host(url: str, item: str) -> tuple[str, int]:
    if not item:
        raise _fail(url, "an empty sentinel host (two commas, or a trailing comma)")
    if item.startswith("["):  # [ipv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise _fail(url, f"sentinel host {item!r} is not [address]:port")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise _fail(url, f"sentinel host {item!r} has no host name")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _fail(url, f"sentinel host {item!r}: the port must be a number in 1-65535")
    return host, int(port_text)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` URL; raise :class:`ConfigurationError` naming the problem."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ of an IPv6 address
        raise _fail(url, str(exc)) from None
    if parts.scheme.lower() != SCHEME:
        raise _fail(url, f"the scheme must be {SCHEME}")
    if parts.fragment:
        raise _fail(url, "a #fragment means nothing here")
    credentials, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not hosts:
        raise _fail(url, "no sentinel hosts (expected host:26379[,host:26379...])")
    sentinels = tuple(_host(url, item) for item in hosts.split(","))
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise _fail(
            url,
            f"the path {parts.path!r} must be the database number (e.g. /0); "
            "name the master with ?service_name=",
        )
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in OPTIONS:
            known = ", ".join(sorted(OPTIONS))
            hint = " (the database is the path: /db)" if name == "db" else ""
            raise _fail(url, f"unknown option {name!r}{hint}; known: {known}")
        if name in options:
            raise _fail(url, f"option {name!r} is given twice")
        try:
            options[name] = OPTIONS[name](value)
        except ValueError as exc:
            raise _fail(url, f"option {name}={value!r}: {exc}") from None
    service = options.pop("service_name", None)
    alias = options.pop("master_name", None)
    if service is not None and alias is not None:
        raise _fail(url, "give service_name or master_name (the same thing), not both")
    service = service if service is not None else alias
    if service is None:
        raise _fail(url, "no master name: add ?service_name=NAME (the name sentinels monitor)")
    connection: dict[str, float | int] = {
        name: options.pop(name)
        for name in ("socket_timeout", "socket_connect_timeout", "health_check_interval")
        if name in options
    }
    return SentinelURL(
        sentinels=sentinels,
        service_name=service,
        db=int(path) if path else 0,
        username=username,
        password=password,
        options=connection,
        **options,
    )
