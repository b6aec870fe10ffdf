"""The example Django project; importing it loads the Celery app (Celery's Django convention)."""

from __future__ import annotations

from mysite.celery import app as celery_app

__all__ = ["celery_app"]
