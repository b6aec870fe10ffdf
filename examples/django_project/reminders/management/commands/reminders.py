"""``manage.py reminders [--sync]``: list reminders with their next run; re-create missing ones.

``--sync`` makes the store match the database: every Reminder row gets its instance (created or
replaced), and instances whose row is gone are removed. Useful after restoring a database backup.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from mysite.celery import pyncette

from reminders.models import Reminder
from reminders.tasks import remind


class Command(BaseCommand):
    help = "List users' reminders and their next run; --sync re-creates the schedules."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sync", action="store_true", help="Make the store match the rows.")

    def handle(self, *args: Any, sync: bool = False, **options: Any) -> None:
        rows = {r.instance: r for r in Reminder.objects.select_related("user").order_by("pk")}
        if sync:
            for reminder in rows.values():
                pyncette.schedule_task(
                    remind,
                    reminder.instance,
                    schedule=reminder.cron,
                    timezone=reminder.timezone,
                    user_id=reminder.user_id,
                    force=True,
                )
            stale: list[str] = []
            token = None
            while True:
                page = pyncette.list_task_states(remind, 500, token)
                stale += [s.instance for s in page.tasks if s.instance not in rows and s.instance]
                token = page.continuation_token
                if token is None:
                    break
            for instance in stale:
                pyncette.unschedule_task(remind, instance)
            self.stdout.write(f"synced {len(rows)} reminder(s), removed {len(stale)} stale")
        for instance, reminder in rows.items():
            state = pyncette.get_task_state(remind, instance)
            next_run = state.scheduled_at.isoformat() if state else "NOT SCHEDULED"
            self.stdout.write(f"{reminder.user.get_username():<20} {reminder.cron:<16} {next_run}")
