"""How the Redis store lays out its data: key names, hash tags, times and hash fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from celery_pyncette.ids import lease_tokens

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """An aware datetime as integer epoch microseconds (exact in a Redis score up to 2^53)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} is naive: store times must be timezone-aware (UTC)")
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: bytes | str | int) -> datetime:
    """The inverse of :func:`to_micros`, as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=int(value))


def text(value: bytes | str) -> str:
    """A reply as str (a client may or may not decode responses)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def partition_prefix(namespace: str, task: str, partition: int) -> bytes:
    """``ns:{T.P}``: the prefix, with its hash tag, of every key of one task partition.

    The tag holds the task name in hex, so names with ``{``, ``}`` or ``:`` cannot break it.
    """
    tag = f"{task.encode('utf-8').hex()}.{int(partition)}"
    return f"{namespace}:{{{tag}}}".encode()


def instance_key(prefix: bytes, instance: str) -> bytes:
    """The hash of one instance under a partition prefix; the name is kept as its UTF-8 bytes."""
    return prefix + b":i:" + instance.encode("utf-8")


def strikes_keys(namespace: str) -> tuple[bytes, bytes]:
    """The strike set and the strikes marker of a namespace (one slot, tagged by the namespace)."""
    prefix = f"{namespace}:{{strikes.{namespace.encode('utf-8').hex()}}}"
    return f"{prefix}:set".encode(), f"{prefix}:marker".encode()


#: The hash field holding an instance's lease token.
LEASE_FIELD = "l"
#: The hash fields the claim script returns, in its order (see ``redis_claim.lua``).
RECORD_FIELDS = ("n", "s", "a", "u", LEASE_FIELD, "o", "r", "t")
_read_json = json.JSONDecoder().raw_decode


def _json(value: Any) -> Any:
    """A stored JSON field (``{}`` when absent). ``raw_decode`` reads one value at half the cost
    of ``json.loads``; text after it (never written by the store) gets ``json.loads``'s error."""
    if not value:
        return {}
    document = value.decode("utf-8") if isinstance(value, bytes) else value
    parsed, end = _read_json(document)
    return parsed if end == len(document) else json.loads(document)


def claim_script_call(
    prefix: bytes, candidates: Sequence[bytes], now_us: int, expiry: str, owner: str, wanted: int
) -> tuple[list[bytes], list[Any]]:
    """The keys and arguments of ``redis_claim.lua`` for candidate names (UTF-8)."""
    keys = [prefix + b":ready", prefix + b":names", *(prefix + b":i:" + c for c in candidates)]
    return keys, [now_us, expiry, owner, wanted, *lease_tokens(wanted)]


def claimed_records(
    reply: bytes | str, candidates: Sequence[bytes]
) -> list[tuple[int, str, dict[str, Any]]]:
    """``(i, instance name, InstanceRecord keyword arguments)`` for each candidate the claim
    script leased (``i``: its 1-based place among ``candidates``)."""
    if not reply:
        return []
    moments: dict[Any, datetime] = {}  # a batch shares its lease expiry, often its due time

    def moment(micros: Any) -> datetime:
        found = moments.get(micros)
        if found is None:
            found = moments[micros] = from_micros(micros)
        return found

    out = []
    for index, (n, s, a, u, lease, owner, r, status) in json.loads(reply):
        fields = {
            "next_run": moment(n),
            "spec": _json(s),
            "args": _json(a),
            "locked_until": moment(u) if u else None,
            "lease": lease or None,
            "locked_by": owner or None,
            "last_run_at": from_micros(r) if r else None,
            "last_status": status or None,
        }
        out.append((index, candidates[index - 1].decode("utf-8"), fields))
    return out


def record_fields(raw: Mapping[Any, Any] | Sequence[Any]) -> dict[str, Any]:
    """InstanceRecord keyword arguments from a stored hash (a dict, or HGETALL's flat array)."""
    if isinstance(raw, Mapping):
        items = {text(k): v for k, v in raw.items()}
    else:
        items = {text(raw[i]): raw[i + 1] for i in range(0, len(raw), 2)}
    values = {k: text(v) for k, v in items.items()}
    return {
        "next_run": from_micros(values["n"]),
        "spec": json.loads(values.get("s", "{}")),
        "args": json.loads(values.get("a", "{}")),
        "locked_until": from_micros(values["u"]) if "u" in values else None,
        "lease": values.get(LEASE_FIELD),
        "locked_by": values.get("o"),
        "last_run_at": from_micros(values["r"]) if "r" in values else None,
        "last_status": values.get("t"),
    }
