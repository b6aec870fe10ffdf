"""Keep a user's celery-pyncette instance in step with their Reminder row.

The store is written only once the database transaction commits (``transaction.on_commit``): a
rolled-back request never leaves a schedule behind, and a schedule never points at a row that
does not exist yet.
"""

from __future__ import annotations

from django.db import transaction
from mysite.celery import pyncette

from reminders.models import Reminder
from reminders.tasks import remind


def validate(cron: str, timezone: str) -> None:
    """Raise ``ValueError`` for a cron expression or zone celery-pyncette would refuse."""
    from celery_pyncette.schedules import CronSchedule

    CronSchedule(cron, timezone)


def schedule(reminder: Reminder) -> None:
    """Create or replace the user's instance (call inside the transaction that saved the row)."""
    transaction.on_commit(
        lambda: pyncette.schedule_task(
            remind,
            reminder.instance,
            schedule=reminder.cron,
            timezone=reminder.timezone,
            user_id=reminder.user_id,
        )
    )


def unschedule(reminder: Reminder) -> None:
    """Remove the user's instance once the row's deletion commits."""
    instance = reminder.instance
    transaction.on_commit(lambda: pyncette.unschedule_task(remind, instance))


def subscribe(user_id: int, cron: str, timezone: str, message: str | None = None) -> Reminder:
    """Save the preference and schedule it, atomically."""
    validate(cron, timezone)
    with transaction.atomic():
        reminder, _ = Reminder.objects.update_or_create(
            user_id=user_id,
            defaults={"cron": cron, "timezone": timezone}
            | ({"message": message} if message else {}),
        )
        schedule(reminder)
    return reminder
