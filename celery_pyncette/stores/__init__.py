"""Schedule stores, chosen by URL scheme.

Each scheme maps to a ``"module:Class"`` string so that a store's driver is imported only when
that store is used; a missing optional dependency is reported with the extra that provides it.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from celery_pyncette._spelling import did_you_mean
from celery_pyncette.errors import ConfigurationError
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, Store, Strike

__all__ = ["STORES", "InstanceKey", "InstanceRecord", "Store", "Strike", "store_from_url"]

#: URL scheme -> (``"module:Class"``, the extra that installs its driver or ``None``).
STORES: dict[str, tuple[str, str | None]] = {
    "memory": ("celery_pyncette.stores.memory:MemoryStore", None),
    "sqlite": ("celery_pyncette.stores.sql:SQLStore", None),
    "postgresql": ("celery_pyncette.stores.sql:SQLStore", "postgres"),
    "postgresql+psycopg": ("celery_pyncette.stores.sql:SQLStore", "postgres"),
    "mysql": ("celery_pyncette.stores.sql:SQLStore", "mysql"),
    "mysql+pymysql": ("celery_pyncette.stores.sql:SQLStore", "mysql"),
    "redis": ("celery_pyncette.stores.redis:RedisStore", "redis"),
    "rediss": ("celery_pyncette.stores.redis:RedisStore", "redis"),
    "redis+cluster": ("celery_pyncette.stores.redis:RedisStore", "redis"),
    "redis+sentinel": ("celery_pyncette.stores.redis:RedisStore", "redis"),
    "dynamodb": ("celery_pyncette.stores.dynamodb:DynamoDBStore", "dynamodb"),
}


def url_scheme(url: str) -> str:
    """The scheme of a store URL; raises :class:`ConfigurationError` naming the problem."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"pyncette_url: {url!r} is not a URL (expected e.g. sqlite:///x.db)"
        )
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. an unbalanced [ of an IPv6 host
        raise ConfigurationError(
            f"pyncette_url: {url.split('@')[-1]!r} is not a URL: {exc}"
        ) from None
    if scheme not in STORES:
        known = ", ".join(sorted(STORES))
        raise ConfigurationError(
            f"pyncette_url: unknown store scheme {scheme!r}{did_you_mean(scheme, STORES)} "
            f"(known: {known})"
        )
    return scheme


def store_class(url: str) -> type[Store]:
    """Import and return the store class for ``url``'s scheme."""
    target, extra = STORES[url_scheme(url)]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if extra is None:
            raise
        raise ConfigurationError(
            f"{class_name} needs an optional dependency that is not installed ({exc.name}): "
            f"pip install 'celery-pyncette[{extra}]'"
        ) from exc
    cls: type[Store] = getattr(module, class_name)
    return cls


def store_from_url(url: str, *, namespace: str = "pyncette", **options: Any) -> Store:
    """Build (without connecting) the store for ``url``.

    ``options`` are passed to the store's constructor (e.g. ``skip_table_create``).
    """
    return store_class(url)(url, namespace=namespace, **options)
