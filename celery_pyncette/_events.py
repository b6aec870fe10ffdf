"""Sending the occurrence signals of :mod:`celery_pyncette.signals`, the same way everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery.utils.dispatch import Signal


def send(
    signal: Signal,
    task: str,
    instance: str | None,
    partition: int,
    scheduled_at: datetime | None,
    **arguments: Any,
) -> None:
    """Send ``signal`` about one occurrence of ``task`` (its name is the sender).

    Free when nothing is connected. Celery logs a receiver that raises and goes on, so a
    receiver never stops dispatch or settlement.
    """
    if not signal.receivers:
        return
    signal.send(
        sender=task,
        task=task,
        instance=instance,
        partition=partition,
        scheduled_at=scheduled_at,
        **arguments,
    )
