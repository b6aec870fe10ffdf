"""One-time messages after a form post (the post/redirect/get pattern).

A form handler answers with :func:`redirect` (303), carrying an ``error`` or a ``notice`` in a
short-lived cookie signed by the dashboard's :class:`~celery_pyncette.dashboard._security.Guard`;
the next page rendered shows it (:func:`read`) and deletes it (:func:`clear`). A cookie whose
signature does not match is ignored.
"""

from __future__ import annotations

import base64
import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from celery_pyncette.dashboard import _formats
from celery_pyncette.dashboard._security import Guard

FLASH_COOKIE = "pyncette_flash"

#: Seconds a message waits for the page it is meant for.
FLASH_MAX_AGE = 60


def redirect(
    request: Request, target: str, guard: Guard, *, error: str | None, notice: str | None
) -> Response:
    """A 303 to ``target`` with the message, if any."""
    response = RedirectResponse(target, status_code=303)
    message = {k: v for k, v in (("error", error), ("notice", notice)) if v}
    if message:
        raw = base64.urlsafe_b64encode(json.dumps(message).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE,
            f"{raw}.{guard.sign('flash:' + raw)}",
            httponly=True,
            samesite="strict",
            path=_formats.root(request) or "/",
            max_age=FLASH_MAX_AGE,
        )
    return response


def read(request: Request, guard: Guard) -> dict[str, str]:
    """The message the request carries (``error`` and/or ``notice``), or ``{}``."""
    raw, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not raw or signature != guard.sign("flash:" + raw):
        return {}
    try:
        message = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return {}
    return {k: str(v) for k, v in message.items()} if isinstance(message, dict) else {}


def clear(request: Request, response: Response) -> None:
    """Delete the message: it was shown."""
    response.delete_cookie(FLASH_COOKIE, path=_formats.root(request) or "/")
