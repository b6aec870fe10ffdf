"""The dashboard's server-rendered pages and the forms on them.

Pages: ``/`` (tasks), ``/tasks/{task}`` (a static task's state, or a dynamic task's instances,
paginated and searchable by name prefix), ``/tasks/{task}/instances/{instance}`` (one instance,
with run now / reschedule / unschedule forms when writable; a static task's page has run now),
``/strikes`` (with add / restore forms), ``/beats`` (beats, the partitions each polls, health, and
the due backlog on request). A form posts to its own route and is answered with a redirect and a
one-time message (:mod:`._flash`).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from celery_pyncette import _overview, _read_model
from celery_pyncette import _registry as registry
from celery_pyncette._state import TaskState
from celery_pyncette.dashboard import _formats, _reading
from celery_pyncette.dashboard._security import form_data
from celery_pyncette.dashboard._site import Site
from celery_pyncette.errors import TaskLockedError


def routes(site: Site) -> list[Route]:
    """The pages (wrapped by ``site.page``) and the forms' targets (``site.form``)."""
    pages = _Pages(site)
    page, form = site.page, site.form
    return [
        Route("/", page(pages.tasks), name="tasks"),
        Route("/strikes", page(pages.strikes), name="strikes"),
        Route("/strikes", form(pages.add_strike), methods=["POST"]),
        Route("/strikes/restore", form(pages.restore_strike), methods=["POST"]),
        Route("/beats", page(pages.beats), name="beats"),
        Route("/tasks/{task}", page(pages.task), name="task"),
        Route("/tasks/{task}/schedule", form(pages.schedule), methods=["POST"]),
        Route("/tasks/{task}/run", form(pages.run_now), methods=["POST"]),
        Route("/tasks/{task}/instances/{instance:path}/run", form(pages.run_now), methods=["POST"]),
        Route(
            "/tasks/{task}/instances/{instance:path}/reschedule",
            form(pages.reschedule),
            methods=["POST"],
        ),
        Route(
            "/tasks/{task}/instances/{instance:path}/unschedule",
            form(pages.unschedule),
            methods=["POST"],
        ),
        Route("/tasks/{task}/instances/{instance:path}", page(pages.instance)),
    ]


def _instance_path(task: str, instance: str) -> str:
    return f"/tasks/{quote(task, safe='')}/instances/{quote(instance, safe='')}"


class _Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.pyncette = site.pyncette

    # --- reading --------------------------------------------------------------------------------

    async def tasks(self, request: Request) -> Response:
        def read() -> tuple[list[_overview.TaskSummary], int, int]:
            now = self.pyncette.now()
            beats = registry.list_beats(self.pyncette.store)
            alive = sum(1 for b in beats if not b.is_stale(now))
            return _overview.summarize(self.pyncette), alive, len(self.pyncette.strikes())

        tasks, alive, strikes = await run_in_threadpool(read)
        return self.site.render(
            request, "tasks.html", {"tasks": tasks, "alive": alive, "strike_count": strikes}
        )

    async def task(self, request: Request) -> Response:
        name = request.path_params["task"]
        summary = await _reading.summary(self.site, name)
        states: list[TaskState] = []
        next_cursor = state = None
        if summary.kind == "dynamic":
            states, next_cursor = await _reading.page_of(self.site, request, name)
        else:
            state = await run_in_threadpool(self.pyncette.get_task_state, name, None)
        return self.site.render(
            request,
            "task.html",
            {
                "task": summary,
                "state": state,
                "states": states,
                "next_cursor": next_cursor,
                "cursor": request.query_params.get("cursor"),
                "prefix": request.query_params.get("prefix", ""),
            },
        )

    async def instance(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        state = await _reading.state(self.site, name, instance)
        summary = await _reading.summary(self.site, name)
        runs = await run_in_threadpool(self.pyncette.history, name, instance)
        return self.site.render(
            request, "instance.html", {"task": summary, "state": state, "history": runs}
        )

    async def strikes(self, request: Request) -> Response:
        strikes = _read_model.sorted_strikes(await run_in_threadpool(self.pyncette.strikes))
        names = sorted(d.name for d in self.pyncette.definitions())
        return self.site.render(
            request,
            "strikes.html",
            {"strikes": strikes, "task_names": names, "section": "strikes"},
        )

    async def beats(self, request: Request) -> Response:
        health = await _reading.health(self.site, request)
        return self.site.render(
            request,
            "beats.html",
            {
                "section": "beats",
                "now": health.now,
                "beats": health.beats,
                "healthy": health.healthy,
                "problems": health.problems,
                "warnings": health.warnings,
                "backlog": health.backlog,
                "stale_after": _formats.duration(registry.STALE_AFTER),
            },
        )

    # --- writing (forms) ------------------------------------------------------------------------

    async def schedule(self, request: Request) -> Response:
        name = request.path_params["task"]
        _reading.definition(self.site, name)
        form = await form_data(request)
        instance = form.get("instance", "").strip()
        args = _formats.json_object(form.get("args", "") or "{}")
        timing = _formats.timing_from(form)
        await run_in_threadpool(
            lambda: self.pyncette.schedule_task(name, instance, **timing, args=args)
        )
        return self.site.back(
            request, _instance_path(name, instance), notice=f"scheduled {instance}"
        )

    async def reschedule(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        state = await _reading.state(self.site, name, instance)
        form = await form_data(request)
        timing = _formats.timing_from(form)
        force = form.get("force") == "1"
        await run_in_threadpool(
            lambda: self.pyncette.schedule_task(
                name,
                instance,
                force=force,
                **timing,
                args=dict(state.args),
                misfire_grace=state.misfire_grace,
            )
        )
        return self.site.back(request, _instance_path(name, instance), notice="rescheduled")

    async def unschedule(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        _reading.definition(self.site, name)
        removed = await run_in_threadpool(self.pyncette.unschedule_task, name, instance)
        message = f"unscheduled {instance}" if removed else f"{instance} was already gone"
        return self.site.back(request, f"/tasks/{quote(name, safe='')}", notice=message)

    async def run_now(self, request: Request) -> Response:
        """One extra occurrence now (a static task, or the instance in the path)."""
        name = request.path_params["task"]
        instance: str | None = request.path_params.get("instance")
        _reading.definition(self.site, name)
        force = (await form_data(request)).get("force") == "1"
        page = (
            f"/tasks/{quote(name, safe='')}" if instance is None else _instance_path(name, instance)
        )
        try:
            at = await run_in_threadpool(lambda: self.pyncette.run_now(name, instance, force=force))
        except TaskLockedError as exc:
            return self.site.back(request, page, error=f"{exc} (tick “run even while running”)")
        notice = f"run now sent for {at.isoformat(timespec='seconds')}: beat sends it next tick"
        return self.site.back(request, page, notice=notice)

    async def add_strike(self, request: Request) -> Response:
        form = await form_data(request)
        task, parameter, operator, value = _formats.strike_from_form(form)
        reason = _formats.reason_from_form(form)
        await run_in_threadpool(
            lambda: self.pyncette.strike(task, parameter, operator, value, reason=reason)
        )
        return self.site.back(request, "/strikes", notice="strike added")

    async def restore_strike(self, request: Request) -> Response:
        task, parameter, operator, value = _formats.strike_from_form(await form_data(request))
        removed = await run_in_threadpool(self.pyncette.restore, task, parameter, operator, value)
        return self.site.back(
            request, "/strikes", notice="strike restored" if removed else "no such strike"
        )
