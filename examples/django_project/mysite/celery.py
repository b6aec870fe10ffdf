"""The Celery app of the Django project, configured from Django settings under ``CELERY_``.

``CELERY_PYNCETTE_URL`` and the other ``CELERY_PYNCETTE_*`` settings reach celery-pyncette through
``config_from_object(..., namespace="CELERY")``. Run::

    celery -A mysite worker
    celery -A mysite beat -S pyncette
    celery -A mysite pyncette status
"""

from __future__ import annotations

import os

from celery import Celery

from celery_pyncette import Pyncette

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

app = Celery("mysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
pyncette = Pyncette(app)
app.autodiscover_tasks()
