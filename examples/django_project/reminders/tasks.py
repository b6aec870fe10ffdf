"""The per-user reminder, a celery-pyncette dynamic task (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

import logging

from mysite.celery import pyncette

from celery_pyncette import Context, ExecutionMode

logger = logging.getLogger(__name__)


@pyncette.dynamic_task(name="reminders.remind", execution_mode=ExecutionMode.AT_MOST_ONCE)
def remind(context: Context) -> str:
    """Send one reminder (here: log it) to the user named in the instance's arguments."""
    from reminders.models import Reminder

    reminder = (
        Reminder.objects.select_related("user").filter(user_id=context.args["user_id"]).first()
    )
    if reminder is None:  # the user is gone: stop the schedule (when beat sent this run)
        if context.instance is not None:
            context.unschedule()
        return "gone"
    logger.info("reminding %s: %s", reminder.user, reminder.message)
    return f"reminded {reminder.user.get_username()}"
