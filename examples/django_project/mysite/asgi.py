"""ASGI entry point: Django, with the celery-pyncette dashboard mounted at ``/pyncette/``.

``uvicorn mysite.asgi:application``. The dashboard is writable for Django staff users: the
authorisation hook reads the Django session cookie of each request.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402 - after Django is set up
from django.contrib.auth import SESSION_KEY, get_user_model  # noqa: E402
from starlette.requests import Request  # noqa: E402

from celery_pyncette.dashboard import create_app  # noqa: E402
from mysite.celery import pyncette  # noqa: E402

DASHBOARD_PREFIX = "/pyncette"


@sync_to_async
def is_staff(session_key: str | None) -> bool:
    """True when the Django session belongs to an active staff user."""
    if not session_key:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user_id = session.get(SESSION_KEY)
    if user_id is None:
        return False
    return get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


async def staff_only(request: Request) -> bool:
    return await is_staff(request.cookies.get(settings.SESSION_COOKIE_NAME))


dashboard = create_app(pyncette, writable=True, authorize=staff_only, secret=settings.SECRET_KEY)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Route ``/pyncette/...`` to the dashboard (as a mount), everything else to Django."""
    path = scope.get("path", "")
    if scope["type"] == "http" and (
        path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")
    ):
        root = scope.get("root_path", "") + DASHBOARD_PREFIX
        await dashboard({**scope, "root_path": root}, receive, send)
        return
    await django_application(scope, receive, send)
