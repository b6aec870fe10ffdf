"""The Redis server settings that lose schedules: checked, and warned about, at setup."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from celery_pyncette.stores.redis._layout import text

log = logging.getLogger("celery_pyncette.stores.redis")

_EVICTING = ("allkeys-",)


def check_server_settings(client: redis.Redis | RedisCluster) -> None:
    """Log a warning for an evicting maxmemory-policy or a server without persistence."""
    nodes: list[redis.Redis]
    if isinstance(client, RedisCluster):
        primaries: list[Any] = client.get_primaries()  # type: ignore[no-untyped-call]
        nodes = [client.get_redis_connection(node) for node in primaries]
    else:
        nodes = [client]
    for node in nodes:
        settings: dict[str, str] = {}
        try:
            for name in ("maxmemory-policy", "appendonly", "save"):
                reply: Mapping[Any, Any] = node.config_get(name)
                settings.update({text(k): text(v) for k, v in reply.items()})
        except (RedisError, RedisClusterException) as exc:
            # CONFIG may be renamed or disabled (managed Redis): not an error.
            log.debug("RedisStore: cannot read the server configuration (%s)", exc)
            return
        policy = settings.get("maxmemory-policy", "")
        if policy.startswith(_EVICTING):
            log.warning(
                "Redis maxmemory-policy is %r: Redis may evict schedules under memory "
                "pressure; set maxmemory-policy noeviction for the pyncette store",
                policy,
            )
        if settings.get("appendonly") == "no" and not settings.get("save", "").strip():
            log.warning(
                "Redis has neither AOF (appendonly) nor RDB snapshots (save) enabled: every "
                "schedule is lost when the server restarts; set appendonly yes"
            )
