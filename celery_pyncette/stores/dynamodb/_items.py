"""How the DynamoDB store names, reads and writes item attributes, and how a refused write comes
back: the vocabulary its private modules share.

Every attribute goes through an expression placeholder (``#lease``), so no attribute name can
collide with a DynamoDB reserved word; :func:`expression` gives the ``ExpressionAttributeNames``
of exactly the placeholders an expression uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

#: The table's hash key, range key, and the ``ready_at`` local secondary index (and attribute).
PK, SK, INDEX = "partition_id", "task_id", "ready_at"

#: Time zero of the stored numbers.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_NAME_TOKEN = re.compile(r"#\w+")
#: Expression placeholder -> attribute name (every attribute goes through a placeholder).
_NAMES = {
    "#pk": PK,
    "#sk": SK,
    "#ready": "ready_at",
    "#next": "next_run",
    "#until": "locked_until",
    "#lease": "lease",
    "#by": "locked_by",
    "#last": "last_run_at",
    "#status": "last_status",
    "#spec": "spec",
    "#args": "args",
    "#v": "version",
    "#release": "release_id",
    "#qreason": "quarantine_reason",
    "#qsince": "quarantined_at",
    "#runs": "runs",
}
#: History slot placeholders ``#h0``, ``#h1``, ... name the attributes ``h0``, ``h1``, ...
_SLOT = re.compile(r"#h\d+")


def expression(*expressions: str | None) -> dict[str, Any]:
    """``ExpressionAttributeNames`` for exactly the placeholders the expressions use."""
    used = {token for text in expressions if text for token in _NAME_TOKEN.findall(text)}
    if not used:
        return {}
    return {
        "ExpressionAttributeNames": {
            token: token[1:] if _SLOT.fullmatch(token) else _NAMES[token] for token in sorted(used)
        }
    }


def number(moment: datetime) -> dict[str, str]:
    """A DynamoDB number: epoch seconds with exactly the datetime's microseconds."""
    micros = (moment - EPOCH) // _MICROSECOND
    return {"N": format(Decimal(micros).scaleb(-6), "f")}


def optional_str(item: Mapping[str, Any], name: str) -> str | None:
    """``item``'s string attribute ``name``, or ``None`` when it has none."""
    return str(item[name]["S"]) if name in item else None


def holds(item: Mapping[str, Any] | None, name: str, lease: str) -> bool:
    """Whether ``item``'s string attribute ``name`` is ``lease``."""
    return item is not None and item.get(name, {}).get("S") == lease


class RefusedError(Exception):
    """An expected refusal: a failed condition, or an error code the caller asked to handle."""

    def __init__(self, code: str, item: Mapping[str, Any] | None):
        super().__init__(code)
        self.code = code
        self.item = item
