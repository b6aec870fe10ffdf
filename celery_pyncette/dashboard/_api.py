"""The dashboard's JSON API: the rows of :mod:`celery_pyncette._read_model`, as ``--json`` prints.

``GET /api/tasks``, ``GET /api/tasks/{task}`` (a static task with its ``state``),
``GET /api/tasks/{task}/instances`` (``limit``, ``cursor``, ``prefix``),
``GET|PUT|DELETE /api/tasks/{task}/instances/{instance}``, ``POST .../run`` and
``POST .../backfill`` of a static task or an instance, ``GET|POST /api/strikes``,
``POST /api/strikes/restore``, ``GET /api/beats`` (``backlog=1``). Errors are
``{"error": ...}`` (:mod:`._site`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from celery_pyncette import _overview, _read_model
from celery_pyncette._backfill import DEFAULT_MAX
from celery_pyncette.dashboard import _formats, _reading
from celery_pyncette.dashboard._site import NotFoundError, Site, json_response

INSTANCE = "/api/tasks/{task}/instances/{instance:path}"


def _time(body: dict[str, Any], key: str) -> datetime:
    """The aware time ``body[key]`` (ISO 8601, ``Z`` allowed); ``ValueError`` naming it."""
    text = body.get(key)
    if not isinstance(text, str):
        raise ValueError(f"{key!r} must be an ISO 8601 time with a UTC offset")
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"{key!r}: {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{key!r}: {text!r} has no UTC offset")
    return value


def routes(site: Site) -> list[Route]:
    """The API's endpoints, reads wrapped by ``site.api``, writes by ``site.api_write``."""
    api = _Api(site)
    read, write = site.api, site.api_write
    return [
        Route("/api/tasks", read(api.tasks)),
        Route("/api/tasks/{task}", read(api.task)),
        Route("/api/tasks/{task}/instances", read(api.instances)),
        Route(INSTANCE, read(api.instance)),
        Route(INSTANCE, write(api.schedule), methods=["PUT"]),
        Route(INSTANCE, write(api.unschedule), methods=["DELETE"]),
        Route("/api/tasks/{task}/run", write(api.run_now), methods=["POST"]),
        Route(INSTANCE + "/run", write(api.run_now), methods=["POST"]),
        Route("/api/tasks/{task}/backfill", write(api.backfill), methods=["POST"]),
        Route(INSTANCE + "/backfill", write(api.backfill), methods=["POST"]),
        Route("/api/strikes", read(api.strikes)),
        Route("/api/strikes", write(api.add_strike), methods=["POST"]),
        Route("/api/strikes/restore", write(api.restore_strike), methods=["POST"]),
        Route("/api/beats", read(api.beats)),
    ]


class _Api:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.pyncette = site.pyncette

    async def tasks(self, request: Request) -> Response:
        summaries = await run_in_threadpool(_overview.summarize, self.pyncette)
        return json_response([_read_model.task_row(s) for s in summaries])

    async def task(self, request: Request) -> Response:
        summary = await _reading.summary(self.site, request.path_params["task"])
        body = _read_model.task_row(summary)
        if summary.kind == "static":
            state = await run_in_threadpool(self.pyncette.get_task_state, summary.name, None)
            body["state"] = None if state is None else _read_model.state_row(state)
        return json_response(body)

    async def instances(self, request: Request) -> Response:
        name = request.path_params["task"]
        if not _reading.definition(self.site, name).dynamic:
            raise NotFoundError(f"{name!r} is a static task: it has no instances")
        states, cursor = await _reading.page_of(self.site, request, name)
        return json_response(
            {"instances": [_read_model.state_row(s) for s in states], "next_cursor": cursor}
        )

    async def instance(self, request: Request) -> Response:
        task, instance = request.path_params["task"], request.path_params["instance"]
        state = await _reading.state(self.site, task, instance)
        return json_response(_read_model.state_row(state))

    async def schedule(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        _reading.definition(self.site, name)
        body = await _formats.json_body(request)
        timing = _formats.timing_from(
            {k: body[k] for k in ("cron", "interval", "at", "timezone") if k in body}
        )
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise ValueError("args must be a JSON object")
        force = body.get("force", False) is True
        state = await run_in_threadpool(
            lambda: self.pyncette.schedule_task(name, instance, force=force, **timing, args=args)
        )
        return json_response(_read_model.state_row(state))

    async def unschedule(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        _reading.definition(self.site, name)
        removed = await run_in_threadpool(self.pyncette.unschedule_task, name, instance)
        if not removed:
            raise NotFoundError(f"task {name!r} has no instance {instance!r}")
        return json_response({"task": name, "instance": instance, "removed": True})

    async def run_now(self, request: Request) -> Response:
        """``{"force": bool}`` (optional): one extra occurrence now (409 while running)."""
        name, instance = request.path_params["task"], request.path_params.get("instance")
        _reading.definition(self.site, name)
        force = (await _formats.json_body(request)).get("force", False) is True
        at = await run_in_threadpool(lambda: self.pyncette.run_now(name, instance, force=force))
        body = {"task": name, "instance": instance, "scheduled_at": at.isoformat()}
        return json_response(body, status=201)

    async def backfill(self, request: Request) -> Response:
        """``{"from": ISO, "to": ISO, "max": n}``: the occurrences of that past window, once."""
        name, instance = request.path_params["task"], request.path_params.get("instance")
        _reading.definition(self.site, name)
        body = await _formats.json_body(request)
        start, end = _time(body, "from"), _time(body, "to")
        limit = body.get("max", DEFAULT_MAX)
        written = await run_in_threadpool(
            lambda: self.pyncette.backfill(name, instance, start=start, end=end, max=limit)
        )
        rows = [
            {"task": name, "instance": instance, "scheduled_at": at.isoformat()} for at in written
        ]
        return json_response({"written": rows}, status=201)

    async def strikes(self, request: Request) -> Response:
        strikes = await run_in_threadpool(self.pyncette.strikes)
        return json_response(
            [_read_model.strike_row(s) for s in _read_model.sorted_strikes(strikes)]
        )

    async def add_strike(self, request: Request) -> Response:
        body = await _formats.json_body(request)
        struck = await run_in_threadpool(
            lambda: self.pyncette.strike(
                body.get("task"),
                body.get("parameter"),
                body.get("operator"),
                body.get("value"),
                reason=body.get("reason"),
            )
        )
        return json_response(_read_model.strike_row(struck), status=201)

    async def restore_strike(self, request: Request) -> Response:
        body = await _formats.json_body(request)
        removed = await run_in_threadpool(
            self.pyncette.restore,
            body.get("task"),
            body.get("parameter"),
            body.get("operator"),
            body.get("value"),
        )
        if not removed:
            raise NotFoundError("no such strike")
        return json_response({"removed": True})

    async def beats(self, request: Request) -> Response:
        health = await _reading.health(self.site, request)
        return json_response(_read_model.health_row(health))
