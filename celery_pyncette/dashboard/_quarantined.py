"""The dashboard's view of quarantined records: ``/quarantined`` and ``GET /api/quarantined``.

Both take ``task`` (only that task's records) and ``limit`` (default 100, at most
:data:`MAX_LISTED`). The API answers ``{"quarantined": [{task, partition, instance, reason,
since}], "more": bool}``; ``instance`` is ``null`` for a static task's record. Read-only: a record
is repaired by scheduling its instance again, or removed by unscheduling it (the instance page).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from celery_pyncette._read_model import quarantined_row
from celery_pyncette.dashboard import _formats
from celery_pyncette.dashboard._site import Site, json_response
from celery_pyncette.stores.base import Quarantined

DEFAULT_LISTED = 100
MAX_LISTED = 1000


def routes(site: Site) -> list[Route]:
    """The page and the API endpoint, wrapped by ``site.page`` and ``site.api``."""

    async def listing(request: Request) -> tuple[list[Quarantined], bool, str | None, int]:
        task = request.query_params.get("task") or None
        limit = _formats.bounded_int(request.query_params.get("limit"), DEFAULT_LISTED, MAX_LISTED)
        found = await run_in_threadpool(site.pyncette.store.list_quarantined, task, limit + 1)
        return found[:limit], len(found) > limit, task, limit

    async def show(request: Request) -> Response:
        records, more, task, limit = await listing(request)
        return site.render(
            request,
            "quarantined.html",
            {
                "section": "quarantined",
                "records": [quarantined_row(q) for q in records],
                "more": more,
                "task": task or "",
                "limit": limit,
            },
        )

    async def answer(request: Request) -> Response:
        records, more, _, _ = await listing(request)
        return json_response({"quarantined": [quarantined_row(q) for q in records], "more": more})

    return [
        Route("/quarantined", site.page(show), name="quarantined"),
        Route("/api/quarantined", site.api(answer)),
    ]
