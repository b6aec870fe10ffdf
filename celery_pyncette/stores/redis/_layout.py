"""How the Redis store lays out its data: key names, hash tags, times and hash fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from celery_pyncette._ids import lease_tokens
from celery_pyncette.stores.base import InstanceKey, InstanceRecord, spec_text

_Item = TypeVar("_Item")
#: The most items one commit/unlock/upsert script handles (keeps each script call short).
BATCH_CHUNK = 500

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
_read_json = json.JSONDecoder().raw_decode


def quarantine_key(prefix: bytes) -> bytes:
    """The quarantine hash of a partition: instance name -> JSON ``[since, reason]``."""
    return prefix + b":quarantine"


def quarantine_index_key(namespace: str) -> bytes:
    """The set of ``[task, partition]`` JSON texts naming the partitions that have had a
    quarantined instance (one slot, tagged by the namespace)."""
    return f"{namespace}:{{quarantine.{namespace.encode('utf-8').hex()}}}:partitions".encode()


_FIELD_NAMES = {"n": "next_run (n)", "s": "spec (s)", "a": "args (a)", "u": "locked_until (u)"}


class FieldError(ValueError):
    """A stored field cannot be decoded; the message names it."""


def _json(value: Any, name: str) -> Any:
    """A stored JSON object (``{}`` when absent). ``raw_decode`` reads one value at half the cost
    of ``json.loads``; text after it (never written by the store) gets ``json.loads``'s error."""
    if not value:
        return {}
    try:
        document = value.decode("utf-8") if isinstance(value, bytes) else value
        parsed, end = _read_json(document)
        if end != len(document):
            parsed = json.loads(document)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise FieldError(f"{name} is not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise FieldError(f"{name} is not a JSON object (a {type(parsed).__name__})")
    return parsed


def _utf8(value: Any, name: str) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError(f"{name} is not UTF-8") from None


def _micros(value: Any, name: str) -> datetime:
    try:
        return from_micros(value)
    except (ValueError, TypeError, OverflowError):
        raise FieldError(f"{name} is not a time in epoch microseconds: {value!r:.40}") from None


def _last_run(value: Any) -> datetime | None:
    """The last run is informational: one that cannot be read reads as none (never run)."""
    if not value:
        return None
    try:
        return from_micros(value)
    except (ValueError, TypeError, OverflowError):
        return None


def claim_script_call(
    prefix: bytes, candidates: Sequence[bytes], now_us: int, expiry: str, owner: str, wanted: int
) -> tuple[list[bytes], list[Any]]:
    """The keys and arguments of ``claim.lua`` for candidate names (UTF-8)."""
    keys = [
        prefix + b":ready",
        prefix + b":names",
        quarantine_key(prefix),
        *(prefix + b":i:" + c for c in candidates),
    ]
    return keys, [now_us, expiry, owner, wanted, *lease_tokens(wanted)]


@dataclass(frozen=True, slots=True)
class ClaimReply:
    """What one claim script call took, read from its reply (see ``claim.lua``).

    ``leased``: (name, InstanceRecord keyword arguments) of each leased, decodable candidate;
    ``undecodable``: (name, lease, reason) of each leased candidate whose fields Python cannot
    decode (to be quarantined under that lease); ``quarantined``: (name, reason) of each
    candidate the script quarantined. ``taken`` counts all three, ``last`` is the 1-based place
    among the candidates of the last one taken (0 when none was).
    """

    leased: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    undecodable: list[tuple[str, str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    taken: int = 0
    last: int = 0


def claimed_records(reply: bytes | str, candidates: Sequence[bytes]) -> ClaimReply:
    """The candidates the claim script took, sorted into leased, undecodable and quarantined."""
    out = ClaimReply()
    if not reply:
        return out
    moments: dict[Any, datetime] = {}  # a batch shares its lease expiry, often its due time

    def moment(micros: Any, name: str) -> datetime:
        found = moments.get(micros)
        if found is None:
            found = moments[micros] = _micros(micros, name)
        return found

    # cjson passes the fields' bytes through: a field that is not UTF-8 must not fail the whole
    # reply. Then the reply is read with surrogates, and a spec or args holding one is refused.
    lenient = False
    document = reply
    if isinstance(reply, bytes):
        try:
            document = reply.decode("utf-8")
        except UnicodeDecodeError:
            document, lenient = reply.decode("utf-8", "surrogateescape"), True
    entries = json.loads(document)
    for index, taken in entries:
        name = candidates[index - 1].decode("utf-8")
        if isinstance(taken, str):
            out.quarantined.append((name, taken))
            continue
        n, s, a, u, lease, owner, r, status = taken
        try:
            if lenient:
                _utf8(s, "spec (s)")
                _utf8(a, "args (a)")
            fields = {
                "next_run": moment(n, "next_run (n)"),
                "spec": _json(s, "spec (s)"),
                "args": _json(a, "args (a)"),
                "locked_until": moment(u, "locked_until (u)") if u else None,
                "lease": lease or None,
                "locked_by": owner or None,
                "last_run_at": _last_run(r),
                "last_status": status or None,
            }
        except FieldError as exc:
            out.undecodable.append((name, lease, str(exc)))
            continue
        out.leased.append((name, fields))
    return ClaimReply(out.leased, out.undecodable, out.quarantined, len(entries), entries[-1][0])


def record_fields(raw: Mapping[Any, Any] | Sequence[Any]) -> dict[str, Any]:
    """InstanceRecord keyword arguments from a stored hash (a dict, or HGETALL's flat array).

    Raises :class:`FieldError` naming the first field that cannot be decoded.
    """
    if isinstance(raw, Mapping):
        items = {text(k): v for k, v in raw.items()}
    else:
        items = {text(raw[i]): raw[i + 1] for i in range(0, len(raw), 2)}
    values = {}
    for name, value in items.items():
        try:
            values[name] = text(value)
        except UnicodeDecodeError:
            raise FieldError(f"{_FIELD_NAMES.get(name, name)} is not UTF-8") from None
    if "n" not in values:
        raise FieldError("next_run (n) is missing")
    return {
        "next_run": _micros(values["n"], "next_run (n)"),
        "spec": _json(values.get("s", "{}"), "spec (s)"),
        "args": _json(values.get("a", "{}"), "args (a)"),
        "locked_until": _micros(values["u"], "locked_until (u)") if "u" in values else None,
        "lease": values.get(LEASE_FIELD),
        "locked_by": values.get("o"),
        "last_run_at": _last_run(values.get("r")),
        "last_status": values.get("t"),
    }


def by_partition(
    items: Sequence[_Item], key_of: Callable[[_Item], InstanceKey]
) -> Iterator[tuple[tuple[str, int], list[tuple[int, _Item]]]]:
    """Group items by task partition (keeping input order), in chunks of at most 500."""
    groups: dict[tuple[str, int], list[tuple[int, _Item]]] = {}
    for index, item in enumerate(items):
        key = key_of(item)
        groups.setdefault((key.task, key.partition), []).append((index, item))
    for part, members in groups.items():
        for start in range(0, len(members), BATCH_CHUNK):
            yield part, members[start : start + BATCH_CHUNK]


def encode_record(record: InstanceRecord) -> list[Any]:
    """The upsert script's four arguments for ``record``; ``ValueError`` when not JSON."""
    key = record.key
    try:
        spec = spec_text(record.spec)  # canonical: the upsert script compares it
        args = json.dumps(dict(record.args), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: spec and args must be JSON-serialisable: {exc}") from exc
    return [key.instance.encode("utf-8"), to_micros(record.next_run), spec, args]
