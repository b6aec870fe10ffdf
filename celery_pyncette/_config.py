"""Settings: one typed, frozen object parsed from ``app.conf`` (``pyncette_*``) and keywords.

Every key is checked once, at start-up: an unknown ``pyncette_*`` key, an unknown store scheme or a
malformed value raises :class:`~celery_pyncette.errors.ConfigurationError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from celery_pyncette._bounds import MAX_DURATION
from celery_pyncette._spelling import did_you_mean
from celery_pyncette.errors import ConfigurationError
from celery_pyncette.stores import url_scheme

PREFIX = "pyncette_"
_NAMESPACE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


@dataclass(frozen=True, slots=True)
class Settings:
    """The parsed ``pyncette_*`` settings. See the README's settings table."""

    url: str = "sqlite:///celerybeat-pyncette.sqlite3"
    batch_size: int = 100
    poll_interval: float = 1.0
    lease_duration: timedelta = timedelta(seconds=60)
    #: How long a sent at-least-once occurrence may wait in the broker queue before beat sends it
    #: again (a message the broker lost is re-sent after this). Never shorter than the lease.
    delivery_timeout: timedelta = timedelta(seconds=3600)
    namespace: str = "pyncette"
    skip_table_create: bool = False
    #: Task name -> the partitions this process polls (overrides ``enabled_partitions=``).
    enabled_partitions: Mapping[str, tuple[int, ...]] | None = None
    #: Port of beat's ``GET /healthz`` (``None``: no endpoint), and the address it listens on.
    health_port: int | None = None
    health_host: str = "0.0.0.0"
    #: How many settled runs each instance keeps in its history (0: no history is written).
    history_size: int = 20


def _whole_number(key: str, value: Any, expected: str) -> int:
    """``value`` (an int, or a string of one) as an int; ``ConfigurationError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{key}: expected {expected}, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{key}: expected {expected}, got {value!r}") from None


def _as_int(key: str, value: Any) -> int:
    number = _whole_number(key, value, "a whole number")
    if number <= 0:
        raise ConfigurationError(f"{key}: must be positive, got {number}")
    return number


def _as_count(key: str, value: Any) -> int:
    """A whole number that may be zero (``pyncette_history_size``), at most 1000."""
    number = _whole_number(key, value, "a whole number")
    if not 0 <= number <= 1000:
        raise ConfigurationError(f"{key}: must be between 0 and 1000, got {number}")
    return number


def _as_seconds(key: str, value: Any) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except ValueError:
            raise ConfigurationError(f"{key}: expected seconds, got {value!r}") from None
    else:
        raise ConfigurationError(f"{key}: expected seconds or a timedelta, got {value!r}")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigurationError(f"{key}: must be a positive number of seconds, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ConfigurationError(
            f"{key}: {value!r} is longer than the maximum of {MAX_DURATION.days} days"
        )
    return seconds


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    }:
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigurationError(f"{key}: expected true or false, got {value!r}")


def _as_partitions(key: str, value: Any) -> dict[str, tuple[int, ...]]:
    """``{"task": [0, 1]}`` or the environment-friendly ``"task=0-3,8;other=1"``."""
    if isinstance(value, str):
        parsed: dict[str, list[int]] = {}
        for part in filter(None, (p.strip() for p in value.split(";"))):
            task, sep, spec = part.partition("=")
            if not sep or not task.strip():
                raise ConfigurationError(f"{key}: expected 'task=0-3,8;other=1', got {value!r}")
            numbers: list[int] = []
            for item in filter(None, (i.strip() for i in spec.split(","))):
                low, dash, high = item.partition("-")
                try:
                    first, last = int(low), int(high if dash else low)
                except ValueError:
                    raise ConfigurationError(
                        f"{key}: {item!r} is not a partition or range"
                    ) from None
                numbers.extend(range(first, last + 1))
            parsed[task.strip()] = numbers
        value = parsed
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{key}: expected a mapping of task name to partitions, got {value!r}"
        )
    result: dict[str, tuple[int, ...]] = {}
    for task, partitions in value.items():
        if not isinstance(task, str) or isinstance(partitions, (str, bytes)):
            raise ConfigurationError(f"{key}: bad entry {task!r}: {partitions!r}")
        try:
            numbers_list = sorted({int(p) for p in partitions})
        except (TypeError, ValueError):
            raise ConfigurationError(f"{key}: partitions of {task!r} must be integers") from None
        if not numbers_list or numbers_list[0] < 0:
            raise ConfigurationError(
                f"{key}: partitions of {task!r} must be non-negative, non-empty"
            )
        result[task] = tuple(numbers_list)
    return result


def _as_port(key: str, value: Any) -> int:
    expected = "a port number (1-65535)"
    port = _whole_number(key, value, expected)
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"{key}: expected {expected}, got {value!r}")
    return port


def _as_host(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or "/" in value:
        raise ConfigurationError(
            f"{key}: expected an address to listen on (e.g. 0.0.0.0, ::, 127.0.0.1), got {value!r}"
        )
    return value


def _parse(name: str, value: Any) -> Any:
    key = PREFIX + name
    if name == "url":
        if not isinstance(value, str):
            raise ConfigurationError(f"{key}: expected a URL string, got {value!r}")
        url_scheme(value)
        return value
    if name == "batch_size":
        return _as_int(key, value)
    if name == "history_size":
        return _as_count(key, value)
    if name == "poll_interval":
        return _as_seconds(key, value)
    if name in ("lease_duration", "delivery_timeout"):
        return timedelta(seconds=_as_seconds(key, value))
    if name == "enabled_partitions":
        return _as_partitions(key, value)
    if name == "health_port":
        return _as_port(key, value)
    if name == "health_host":
        return _as_host(key, value)
    if name == "namespace":
        if not isinstance(value, str) or not _NAMESPACE.fullmatch(value):
            raise ConfigurationError(
                f"{key}: {value!r} is not a valid namespace (letters, digits and _, at most 41)"
            )
        return value
    return _as_bool(key, value)


def settings_from(conf: Mapping[str, Any], overrides: Mapping[str, Any]) -> Settings:
    """Parse ``pyncette_*`` keys of ``conf``, then keyword ``overrides`` (names without the prefix).

    ``conf`` is usually ``app.conf``; with Django's ``namespace="CELERY"`` its keys arrive as
    ``CELERY_PYNCETTE_URL`` and are accepted too.
    """
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for raw_key in list(conf.keys()):
        lowered = str(raw_key).lower()
        if lowered.startswith("celery_" + PREFIX):
            lowered = lowered[len("celery_") :]
        if not lowered.startswith(PREFIX):
            continue
        name = lowered[len(PREFIX) :]
        value = conf[raw_key]
        if name not in known:
            _unknown(PREFIX + name, known)
        if value is not None:
            values[name] = _parse(name, value)
    for name, value in overrides.items():
        if name not in known:
            _unknown(name, known, prefix="")
        values[name] = _parse(name, value)
    settings = Settings(**values)
    _check_delivery_timeout(settings)
    return settings


def _check_delivery_timeout(settings: Settings) -> None:
    """The queue wait a sent occurrence's lease covers cannot be shorter than the lease itself."""
    if settings.delivery_timeout < settings.lease_duration:
        raise ConfigurationError(
            f"{PREFIX}delivery_timeout ({settings.delivery_timeout.total_seconds():g} s) must be "
            f"at least {PREFIX}lease_duration ({settings.lease_duration.total_seconds():g} s)"
        )


def _unknown(key: str, known: set[str], prefix: str = PREFIX) -> None:
    options = [prefix + k for k in sorted(known)]
    raise ConfigurationError(
        f"unknown setting {key!r}{did_you_mean(key, options)} (known: {', '.join(options)})"
    )
