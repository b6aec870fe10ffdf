"""Claimers racing in threads, for the tests that no instance is ever claimed twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable

from celery_pyncette.stores.base import InstanceRecord


def claim_concurrently(
    claim_all: Callable[[int], Iterable[InstanceRecord]], claimers: int = 4, timeout: float = 60
) -> Counter[str]:
    """Run ``claim_all(slot)`` for each slot in its own thread, all at once; return how many
    times each instance was claimed. A claimer's exception fails the calling test."""
    taken: list[list[InstanceRecord]] = [[] for _ in range(claimers)]
    errors: list[BaseException] = []

    def claimer(slot: int) -> None:
        try:
            taken[slot].extend(claim_all(slot))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads), f"claimers still running {timeout} s"
    return Counter(r.key.instance for records in taken for r in records)
