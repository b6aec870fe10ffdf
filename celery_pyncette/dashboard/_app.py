"""The dashboard's app factory: :func:`create_app` puts the pages, the API and sign-in together.

Pages and their forms: :mod:`._pages`; the JSON API: :mod:`._api` (serialised by
:mod:`celery_pyncette._read_model`, as the CLI's ``--json`` is); sign-in: :mod:`._login`;
quarantined records, page and API: :mod:`._quarantined`. What they share (access checks, error
answers, rendering, one-time messages) is :mod:`._site`; the checks themselves are
:mod:`._security`.
"""

from __future__ import annotations

from starlette.applications import Starlette

from celery_pyncette._extension import Pyncette
from celery_pyncette.dashboard import _api, _login, _pages, _quarantined
from celery_pyncette.dashboard._security import Authorize, Guard
from celery_pyncette.dashboard._site import Site


def create_app(
    pyncette: Pyncette,
    *,
    writable: bool = False,
    authorize: Authorize | None = None,
    token: str | None = None,
    secret: str | bytes | None = None,
    title: str = "celery-pyncette",
    page_size: int = 50,
) -> Starlette:
    """The dashboard of ``pyncette`` as an ASGI app (Starlette), to mount or run with uvicorn.

    - ``writable``: allow strikes, restores, scheduling and unscheduling (read-only by default).
    - ``authorize``: ``authorize(request) -> bool`` (or async), asked on every request; false: 403.
    - ``token``: require ``Authorization: Bearer <token>`` or a sign-in with it (cookie).
    - ``secret``: signs CSRF tokens and cookies; give the same one to every process serving the
      dashboard (default: derived from ``token``, else random per process).
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive integer, got {page_size!r}")
    guard = Guard(writable=writable, authorize=authorize, token=token, secret=secret)
    site = Site(pyncette, guard, title, page_size)
    routes = [
        *_pages.routes(site),
        _login.route(site),
        *_api.routes(site),
        *_quarantined.routes(site),
    ]
    return Starlette(routes=routes)
