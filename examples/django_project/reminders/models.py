"""A user's reminder preference: the database row is the source of truth of the schedule."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Reminder(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    message = models.CharField(max_length=200, default="Time to check in")

    def __str__(self) -> str:
        return f"{self.user} at {self.cron} ({self.timezone})"

    @property
    def instance(self) -> str:
        """The name of this user's celery-pyncette instance."""
        return f"user-{self.user_id}"
