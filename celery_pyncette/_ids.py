"""Random identifiers: lease tokens and Celery task ids, both random (version 4) UUIDs.

Beat makes one of each for every occurrence it sends, so they are made a batch at a time, without
a ``uuid.UUID`` object per identifier: one ``os.urandom`` call and one hex conversion give the
random digits of the whole batch, then each identifier gets the version digit (``4``) and the
variant digit (``8``-``b``) a ``uuid.uuid4()`` has. Same 122 random bits, same text, a third of
the time.
"""

from __future__ import annotations

import os

#: A random hex digit's two low bits, as the UUID variant digit (RFC 4122: binary ``10xx``).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def lease_tokens(count: int) -> list[str]:
    """``count`` fresh lease tokens: random UUIDs as 32 hex digits (``uuid.uuid4().hex``)."""
    digits = os.urandom(16 * count).hex()
    return [
        f"{digits[i : i + 12]}4{digits[i + 13 : i + 16]}"
        f"{_VARIANT[digits[i + 16]]}{digits[i + 17 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def task_ids(count: int) -> list[str]:
    """``count`` fresh Celery task ids: random UUIDs in canonical text (``str(uuid.uuid4())``)."""
    return [f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}" for u in lease_tokens(count)]
