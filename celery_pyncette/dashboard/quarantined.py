"""The dashboard's view of quarantined records: ``/quarantined`` and ``GET /api/quarantined``.

Both take ``task`` (only that task's records) and ``limit`` (default 100, at most
:data:`MAX_LISTED`). The API answers ``{"quarantined": [{task, partition, instance, reason,
since}], "more": bool}``; ``instance`` is ``null`` for a static task's record. Read-only: a record
is repaired by scheduling its instance again, or removed by unscheduling it (the instance page).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from celery_pyncette import quarantine
from celery_pyncette.dashboard import formats
from celery_pyncette.extension import Pyncette
from celery_pyncette.stores.base import Quarantined

Handler = Callable[[Request], Awaitable[Response]]
#: The dashboard's ``render(request, template, context)``.
Render = Callable[[Request, str, Mapping[str, Any]], Response]
#: The dashboard's wrapper of a page or an API handler with its access checks and error pages.
Wrap = Callable[[Handler], Handler]

DEFAULT_LISTED = 100
MAX_LISTED = 1000


def routes(pyncette: Pyncette, render: Render, page: Wrap, api: Wrap) -> list[Route]:
    """The page and the API endpoint, wrapped by ``page`` and ``api`` (the access checks)."""

    async def listing(request: Request) -> tuple[list[Quarantined], bool, str | None, int]:
        task = request.query_params.get("task") or None
        limit = formats.bounded_int(request.query_params.get("limit"), DEFAULT_LISTED, MAX_LISTED)
        found = await run_in_threadpool(pyncette.store.list_quarantined, task, limit + 1)
        return found[:limit], len(found) > limit, task, limit

    async def show(request: Request) -> Response:
        records, more, task, limit = await listing(request)
        return render(
            request,
            "quarantined.html",
            {
                "section": "quarantined",
                "records": [quarantine.as_row(q) for q in records],
                "more": more,
                "task": task or "",
                "limit": limit,
            },
        )

    async def answer(request: Request) -> Response:
        records, more, _, _ = await listing(request)
        return formats.json_response(
            {"quarantined": [quarantine.as_row(q) for q in records], "more": more}
        )

    return [
        Route("/quarantined", page(show), name="quarantined"),
        Route("/api/quarantined", api(answer)),
    ]
