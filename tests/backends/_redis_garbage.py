"""The garbage the quarantine contract writes into a Redis store (plain Redis and Cluster keep
the same per-instance hash, so both backends share it)."""

from __future__ import annotations

from celery_pyncette.stores.base import InstanceKey, Store, Strike, strike_id
from celery_pyncette.stores.redis import RedisStore, instance_key, partition_prefix
from celery_pyncette.stores.redis._layout import strikes_keys

#: Hash field -> garbage. n and u are read by the claim script (which quarantines them: it
#: cannot tell whether the instance is due), s and a by Python after the claim.
CORRUPTIONS: dict[str, str | bytes] = {
    "n": "soon",
    "u": "later",
    "s": "not json {",
    "a": "[1, 2]",
    "a/utf-8": b'{"a": "\xff"}',  # not UTF-8: must not fail the claim's whole reply
}
#: How reasons name the hash fields.
FIELD_LABELS = {"n": "next_run (n)", "u": "locked_until (u)", "s": "spec (s)", "a": "args (a)"}
#: Nothing the claim overwrites without reading.
HEALED_BY_CLAIM: dict[str, str] = {}

#: Field -> garbage that reads as none (the last run is informational).
TOLERATED = {"r": "yesterday"}


def corrupt(store: Store, key: InstanceKey, field: str) -> None:
    """HSET the garbage of ``field`` into the instance's hash."""
    assert isinstance(store, RedisStore)
    name = instance_key(partition_prefix(store.namespace, key.task, key.partition), key.instance)
    client = store._redis()
    assert client.exists(name), f"{key} not found"
    client.hset(name, field.split("/", 1)[0], {**CORRUPTIONS, **TOLERATED}[field])


def write_legacy_strike(store: Store, strike: Strike) -> None:
    """SADD ``strike``'s id to the strike set, as a version before reasons did (no reasons
    hash)."""
    assert isinstance(store, RedisStore)
    assert strike.reason is None
    strikes, _marker, _reasons = strikes_keys(store.namespace)
    store._redis().sadd(strikes, strike_id(strike))
