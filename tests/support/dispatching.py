"""Driving beat's Dispatcher directly, as a tick does."""

from __future__ import annotations

from typing import Any

from celery_pyncette import Pyncette
from celery_pyncette._dispatch import Dispatcher


def dispatch_stopping_after(pyncette: Pyncette, batches: int) -> int:
    """One ``dispatch`` over every task, asked to stop (as at a shutdown) once ``batches``
    batches were sent; how many batches it sent."""
    dispatcher = Dispatcher(pyncette.runtime, "beat")
    sent = {"batches": 0}
    real_send = dispatcher._send_batch

    def counting(*args: Any) -> int:
        sent["batches"] += 1
        return real_send(*args)

    dispatcher._send_batch = counting  # type: ignore[method-assign]
    dispatcher.stopping = lambda: sent["batches"] >= batches
    dispatcher.dispatch(pyncette.definitions())
    return sent["batches"]
