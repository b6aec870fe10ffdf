"""The Redis store's Lua scripts (``celery_pyncette/stores/redis/*.lua``), run by EVALSHA."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster


class Lua:
    """One Lua script: run by EVALSHA, loaded again when the server answers NOSCRIPT."""

    def __init__(self, name: str) -> None:
        self.name = name
        source = resources.files("celery_pyncette.stores.redis") / f"{name}.lua"
        self.text = source.read_text("utf-8")
        self.sha = hashlib.sha1(self.text.encode("utf-8")).hexdigest()

    def __call__(
        self, client: redis.Redis | RedisCluster, keys: Sequence[bytes], args: Sequence[Any]
    ) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # After SCRIPT FLUSH, a restart or a failover: load it (on every primary of a cluster).
            client.script_load(self.text)
            return client.evalsha(self.sha, len(keys), *keys, *args)


#: Every script by name; the files are package data in ``celery_pyncette/stores/redis/``.
SCRIPTS = {
    name: Lua(name)
    for name in (
        "claim",
        "commit",
        "unlock",
        "record",
        "extend",
        "upsert",
        "delete",
        "strike",
        "list_strikes",
        "due",
        "quarantine",
    )
}
