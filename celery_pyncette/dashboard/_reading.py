"""The store reads the pages and the API share, off the event loop, with their 404s.

Each function reads through :mod:`celery_pyncette._overview` or the extension's state API in a
thread (stores are synchronous) and raises :class:`~celery_pyncette.dashboard._site.NotFoundError`
for an unknown task or instance (a name that breaks the naming rules is a ``ValueError``: 400).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from celery_pyncette import _names as names
from celery_pyncette import _overview
from celery_pyncette._definitions import TaskDefinition
from celery_pyncette._state import TaskState
from celery_pyncette.dashboard import _formats
from celery_pyncette.dashboard._site import NotFoundError, Site

#: Most instances one page (or API call) lists.
MAX_PAGE = 500


def definition(site: Site, name: str) -> TaskDefinition:
    """The task called ``name`` (a full name, or a function name only one task has)."""
    try:
        return site.pyncette.definition(name)
    except ValueError as exc:
        reserved = names.is_reserved_task_name(name)  # then a 400 naming the rule
        raise (exc if reserved else NotFoundError(f"no task {name!r} in this app")) from None


async def summary(site: Site, name: str) -> _overview.TaskSummary:
    """The summary of one task, as the task list shows it."""
    definition(site, name)
    (found,) = await run_in_threadpool(_overview.summarize, site.pyncette, [name])
    return found


async def page_of(site: Site, request: Request, task: str) -> tuple[list[TaskState], str | None]:
    """The instances the query asks for (``limit``, ``cursor``, ``prefix``), and the next cursor."""
    limit = _formats.bounded_int(request.query_params.get("limit"), site.page_size, MAX_PAGE)
    page = await run_in_threadpool(
        lambda: _overview.find_instances(
            site.pyncette,
            task,
            limit=limit,
            continuation_token=request.query_params.get("cursor") or None,
            prefix=request.query_params.get("prefix") or None,
        )
    )
    return page.tasks, page.continuation_token


async def state(site: Site, task: str, instance: str | None) -> TaskState:
    """The state of a static task (``instance`` ``None``) or of one dynamic instance."""
    found = definition(site, task)
    if instance is not None and not found.dynamic:
        raise NotFoundError(f"{task!r} is a static task: it has no instances")
    stored = await run_in_threadpool(site.pyncette.get_task_state, task, instance)
    if stored is None:
        raise NotFoundError(f"task {task!r} has no instance {instance!r}")
    return stored


async def health(site: Site, request: Request) -> _overview.Health:
    """Beats, problems, warnings; the due backlog too with ``?backlog=1``."""
    with_backlog = request.query_params.get("backlog") == "1"
    return await run_in_threadpool(
        lambda: _overview.health(site.pyncette, site.pyncette.now(), with_backlog=with_backlog)
    )
