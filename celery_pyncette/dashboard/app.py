"""The dashboard's routes: server-rendered pages and the JSON API behind them.

Pages: ``/`` (tasks), ``/tasks/{task}`` (a static task's state, or a dynamic task's instances,
paginated and searchable by name prefix), ``/tasks/{task}/instances/{instance}`` (one instance,
with reschedule / unschedule forms when writable), ``/strikes`` (with add / restore forms),
``/beats`` (beats, the partitions each polls, health, and the due backlog on request).

API (JSON): ``GET /api/tasks``, ``GET /api/tasks/{task}``, ``GET /api/tasks/{task}/instances``
(``limit``, ``cursor``, ``prefix``), ``GET|PUT|DELETE /api/tasks/{task}/instances/{instance}``,
``GET|POST /api/strikes``, ``POST /api/strikes/restore``, ``GET /api/beats`` (``backlog=1``).
Quarantined records: ``/quarantined`` and its API (:mod:`celery_pyncette.dashboard.quarantined`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from celery_pyncette import clock, names, overview, registry
from celery_pyncette.dashboard import formats
from celery_pyncette.dashboard.quarantined import routes as quarantine_routes
from celery_pyncette.dashboard.security import (
    AUTH_COOKIE,
    SESSION_COOKIE,
    AccessDeniedError,
    Authorize,
    Guard,
    form_data,
)
from celery_pyncette.dashboard.templates import TEMPLATES
from celery_pyncette.definitions import TaskDefinition
from celery_pyncette.errors import PyncetteError, StoreError, TaskLockedError
from celery_pyncette.extension import Pyncette
from celery_pyncette.state import TaskState
from celery_pyncette.strikes import OPERATOR_NAMES as STRIKE_OPERATORS

Handler = Callable[[Request], Awaitable[Response]]

FLASH_COOKIE = "pyncette_flash"
MAX_PAGE = 500


class NotFoundError(Exception):
    """404: no such task or instance."""


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
    return _Dashboard(pyncette, guard, title, page_size).app()


class _Dashboard:
    def __init__(self, pyncette: Pyncette, guard: Guard, title: str, page_size: int) -> None:
        self.pyncette = pyncette
        self.guard = guard
        self.title = title
        self.page_size = page_size
        self.env = jinja2.Environment(
            loader=jinja2.DictLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals.update(
            q=lambda value: quote(str(value), safe=""),
            args_text=lambda args: json.dumps(dict(args), sort_keys=True),
            json=lambda value: json.dumps(value),
            operators=STRIKE_OPERATORS,
            **formats.TEMPLATE_HELPERS,
        )

    def app(self) -> Starlette:
        page, api, write, form = self._page, self._api, self._api_write, self._form
        routes = [
            Route("/", page(self.tasks_page), name="tasks"),
            Route("/login", self._login, methods=["GET", "POST"], name="login"),
            Route("/strikes", page(self.strikes_page), name="strikes"),
            Route("/strikes", form(self.add_strike), methods=["POST"]),
            Route("/strikes/restore", form(self.restore_strike), methods=["POST"]),
            Route("/beats", page(self.beats_page), name="beats"),
            Route("/tasks/{task}", page(self.task_page), name="task"),
            Route("/tasks/{task}/schedule", form(self.schedule_form), methods=["POST"]),
            Route(
                "/tasks/{task}/instances/{instance:path}/reschedule",
                form(self.reschedule_form),
                methods=["POST"],
            ),
            Route(
                "/tasks/{task}/instances/{instance:path}/unschedule",
                form(self.unschedule_form),
                methods=["POST"],
            ),
            Route("/tasks/{task}/instances/{instance:path}", page(self.instance_page)),
            Route("/api/tasks", api(self.api_tasks)),
            Route("/api/tasks/{task}", api(self.api_task)),
            Route("/api/tasks/{task}/instances", api(self.api_instances)),
            Route("/api/tasks/{task}/instances/{instance:path}", api(self.api_instance)),
            Route(
                "/api/tasks/{task}/instances/{instance:path}",
                write(self.api_schedule),
                methods=["PUT"],
            ),
            Route(
                "/api/tasks/{task}/instances/{instance:path}",
                write(self.api_unschedule),
                methods=["DELETE"],
            ),
            Route("/api/strikes", api(self.api_strikes)),
            Route("/api/strikes", write(self.api_add_strike), methods=["POST"]),
            Route("/api/strikes/restore", write(self.api_restore_strike), methods=["POST"]),
            Route("/api/beats", api(self.api_beats)),
            *quarantine_routes(self.pyncette, self.render, page, api),
        ]
        return Starlette(routes=routes)

    # --- request plumbing ---------------------------------------------------------------------

    def _page(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=False, api=False)

    def _form(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=True, api=False)

    def _api(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=False, api=True)

    def _api_write(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=True, api=True)

    def _wrap(self, handler: Handler, *, write: bool, api: bool) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                await self.guard.check(request, write=write)
                response = await handler(request)
            except AccessDeniedError as denied:
                response = self._refusal(request, denied.status, denied.reason, api, denied)
            except NotFoundError as exc:
                response = self._refusal(request, 404, str(exc), api)
            except StoreError as exc:
                response = self._refusal(request, 503, f"the store failed: {exc}", api)
            except TaskLockedError as exc:
                if api or not write:
                    response = self._refusal(request, 409, str(exc), api)
                else:
                    response = self._back(request, error=f"{exc} (tick “replace while running”)")
            except (ValueError, PyncetteError) as exc:
                if api or not write:
                    response = self._refusal(request, 400, str(exc), api)
                else:
                    response = self._back(request, error=str(exc))
            self._keep_session(request, response)
            return response

        return endpoint

    def _refusal(
        self,
        request: Request,
        status: int,
        reason: str,
        api: bool,
        denied: AccessDeniedError | None = None,
    ) -> Response:
        if api:
            return JSONResponse({"error": reason}, status_code=status)
        if denied is not None and denied.status == 401:
            return self.render(
                request,
                "message.html",
                {"heading": "Sign in", "message": "This dashboard needs a token.", "login": True},
                status=401,
            )
        heading = {403: "Forbidden", 404: "Not found", 405: "Read-only"}.get(status, "Error")
        return self.render(
            request, "message.html", {"heading": heading, "message": reason, "login": False}, status
        )

    def _keep_session(self, request: Request, response: Response) -> None:
        fresh = request.scope.get("pyncette.new_session")
        if fresh:
            response.set_cookie(
                SESSION_COOKIE,
                fresh,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=formats.root(request) or "/",
            )

    def url(self, request: Request, path: str) -> str:
        return formats.root(request) + path

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        status: int = 200,
    ) -> HTMLResponse:
        now = clock.utcnow()
        flash = self._read_flash(request)
        values = {
            "request": request,
            "url": lambda path: self.url(request, path),
            "relative": lambda value: formats.relative(value, now),
            "now_text": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "title": self.title,
            "writable": self.guard.writable,
            "csrf": self.guard.csrf_token(request),
            "section": "tasks",
            "error": flash.get("error"),
            "notice": flash.get("notice"),
            **context,
        }
        html = self.env.get_template(template).render(values)
        response = HTMLResponse(html, status_code=status)
        if flash:
            response.delete_cookie(FLASH_COOKIE, path=formats.root(request) or "/")
        return response

    def _back(
        self,
        request: Request,
        path: str | None = None,
        *,
        error: str | None = None,
        notice: str | None = None,
    ) -> Response:
        """Redirect (303) after a form post, with a one-time message.

        Without ``path``: back to the page the form was on (the ``Referer``, if it is this site).
        """
        target = self.url(request, path) if path else formats.same_site_referer(request)
        response = RedirectResponse(target, status_code=303)
        message = {k: v for k, v in (("error", error), ("notice", notice)) if v}
        if message:
            raw = base64.urlsafe_b64encode(json.dumps(message).encode()).decode()
            response.set_cookie(
                FLASH_COOKIE,
                f"{raw}.{self.guard.sign('flash:' + raw)}",
                httponly=True,
                samesite="strict",
                path=formats.root(request) or "/",
                max_age=60,
            )
        return response

    def _read_flash(self, request: Request) -> dict[str, str]:
        raw, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
        if not raw or signature != self.guard.sign("flash:" + raw):
            return {}
        try:
            message = json.loads(base64.urlsafe_b64decode(raw.encode()))
        except ValueError:
            return {}
        return {k: str(v) for k, v in message.items()} if isinstance(message, dict) else {}

    async def _login(self, request: Request) -> Response:
        try:
            await self.guard.check_hook(request)
            if request.method != "GET":
                self.guard.check_same_site(request)
        except AccessDeniedError as denied:
            return self._refusal(request, denied.status, denied.reason, False)
        if self.guard.token is None:
            return RedirectResponse(self.url(request, "/"), status_code=303)
        if request.method == "GET":
            return self._refusal(request, 401, "", False, AccessDeniedError(401, "sign in"))
        supplied = (await form_data(request)).get("token", "")
        if not self.guard.token_matches(supplied):
            return self.render(
                request,
                "message.html",
                {"heading": "Sign in", "message": "Wrong token.", "login": True},
                status=401,
            )
        response = RedirectResponse(self.url(request, "/"), status_code=303)
        response.set_cookie(
            AUTH_COOKIE,
            self.guard.auth_cookie_value(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=formats.root(request) or "/",
        )
        return response

    # --- reading ------------------------------------------------------------------------------

    def _definition(self, name: str) -> TaskDefinition:
        try:
            return self.pyncette.definition(name)
        except ValueError as exc:
            reserved = names.is_reserved_task_name(name)  # then a 400 naming the rule
            raise (exc if reserved else NotFoundError(f"no task {name!r} in this app")) from None

    async def _summary(self, name: str) -> overview.TaskSummary:
        self._definition(name)
        (summary,) = await run_in_threadpool(overview.summarize, self.pyncette, [name])
        return summary

    async def _page_of(self, request: Request, task: str) -> tuple[list[TaskState], str | None]:
        limit = formats.bounded_int(request.query_params.get("limit"), self.page_size, MAX_PAGE)
        page = await run_in_threadpool(
            lambda: overview.find_instances(
                self.pyncette,
                task,
                limit=limit,
                continuation_token=request.query_params.get("cursor") or None,
                prefix=request.query_params.get("prefix") or None,
            )
        )
        return page.tasks, page.continuation_token

    async def _state(self, task: str, instance: str | None) -> TaskState:
        definition = self._definition(task)
        if instance is not None and not definition.dynamic:
            raise NotFoundError(f"{task!r} is a static task: it has no instances")
        state = await run_in_threadpool(self.pyncette.get_task_state, task, instance)
        if state is None:
            raise NotFoundError(f"task {task!r} has no instance {instance!r}")
        return state

    async def tasks_page(self, request: Request) -> Response:
        def read() -> tuple[list[overview.TaskSummary], int, int]:
            now = self.pyncette.now()
            beats = registry.list_beats(self.pyncette.store)
            alive = sum(1 for b in beats if not b.is_stale(now))
            return overview.summarize(self.pyncette), alive, len(self.pyncette.strikes())

        tasks, alive, strikes = await run_in_threadpool(read)
        return self.render(
            request, "tasks.html", {"tasks": tasks, "alive": alive, "strike_count": strikes}
        )

    async def task_page(self, request: Request) -> Response:
        name = request.path_params["task"]
        summary = await self._summary(name)
        states: list[TaskState] = []
        next_cursor = state = None
        if summary.kind == "dynamic":
            states, next_cursor = await self._page_of(request, name)
        else:
            state = await run_in_threadpool(self.pyncette.get_task_state, name, None)
        return self.render(
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

    async def instance_page(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        state = await self._state(name, instance)
        summary = await self._summary(name)
        return self.render(request, "instance.html", {"task": summary, "state": state})

    async def strikes_page(self, request: Request) -> Response:
        strikes = await run_in_threadpool(self.pyncette.strikes)
        strikes.sort(key=lambda s: json.dumps(formats.strike_json(s), sort_keys=True))
        names = sorted(d.name for d in self.pyncette.definitions())
        return self.render(
            request,
            "strikes.html",
            {"strikes": strikes, "task_names": names, "section": "strikes"},
        )

    async def _health(self, request: Request) -> overview.Health:
        with_backlog = request.query_params.get("backlog") == "1"
        return await run_in_threadpool(
            lambda: overview.health(self.pyncette, self.pyncette.now(), with_backlog=with_backlog)
        )

    async def beats_page(self, request: Request) -> Response:
        health = await self._health(request)
        return self.render(
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
                "stale_after": formats.duration(registry.STALE_AFTER),
            },
        )

    # --- writing (forms) ------------------------------------------------------------------------

    async def schedule_form(self, request: Request) -> Response:
        name = request.path_params["task"]
        self._definition(name)
        form = await form_data(request)
        instance = form.get("instance", "").strip()
        args = formats.json_object(form.get("args", "") or "{}")
        timing = formats.timing_from(form)
        await run_in_threadpool(
            lambda: self.pyncette.schedule_task(name, instance, **timing, **args)
        )
        return self._back(
            request,
            f"/tasks/{quote(name, safe='')}/instances/{quote(instance, safe='')}",
            notice=f"scheduled {instance}",
        )

    async def reschedule_form(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        state = await self._state(name, instance)
        form = await form_data(request)
        timing = formats.timing_from(form)
        force = form.get("force") == "1"
        await run_in_threadpool(
            lambda: self.pyncette.schedule_task(
                name, instance, force=force, **timing, **dict(state.args)
            )
        )
        return self._back(
            request,
            f"/tasks/{quote(name, safe='')}/instances/{quote(instance, safe='')}",
            notice="rescheduled",
        )

    async def unschedule_form(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        self._definition(name)
        removed = await run_in_threadpool(self.pyncette.unschedule_task, name, instance)
        message = f"unscheduled {instance}" if removed else f"{instance} was already gone"
        return self._back(request, f"/tasks/{quote(name, safe='')}", notice=message)

    async def add_strike(self, request: Request) -> Response:
        task, parameter, operator, value = formats.strike_from_form(await form_data(request))
        await run_in_threadpool(self.pyncette.strike, task, parameter, operator, value)
        return self._back(request, "/strikes", notice="strike added")

    async def restore_strike(self, request: Request) -> Response:
        task, parameter, operator, value = formats.strike_from_form(await form_data(request))
        removed = await run_in_threadpool(self.pyncette.restore, task, parameter, operator, value)
        return self._back(
            request, "/strikes", notice="strike restored" if removed else "no such strike"
        )

    # --- the JSON API ---------------------------------------------------------------------------

    async def api_tasks(self, request: Request) -> Response:
        summaries = await run_in_threadpool(overview.summarize, self.pyncette)
        return formats.json_response([formats.summary_json(s) for s in summaries])

    async def api_task(self, request: Request) -> Response:
        summary = await self._summary(request.path_params["task"])
        body = formats.summary_json(summary)
        if summary.kind == "static":
            state = await run_in_threadpool(self.pyncette.get_task_state, summary.name, None)
            body["state"] = None if state is None else formats.state_json(state)
        return formats.json_response(body)

    async def api_instances(self, request: Request) -> Response:
        name = request.path_params["task"]
        if not self._definition(name).dynamic:
            raise NotFoundError(f"{name!r} is a static task: it has no instances")
        states, cursor = await self._page_of(request, name)
        return formats.json_response(
            {"instances": [formats.state_json(s) for s in states], "next_cursor": cursor}
        )

    async def api_instance(self, request: Request) -> Response:
        state = await self._state(request.path_params["task"], request.path_params["instance"])
        return formats.json_response(formats.state_json(state))

    async def api_schedule(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        self._definition(name)
        body = await formats.json_body(request)
        timing = formats.timing_from(
            {k: body[k] for k in ("cron", "interval", "at", "timezone") if k in body}
        )
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise ValueError("args must be a JSON object")
        force = body.get("force", False) is True
        state = await run_in_threadpool(
            lambda: self.pyncette.schedule_task(name, instance, force=force, **timing, **args)
        )
        return formats.json_response(formats.state_json(state))

    async def api_unschedule(self, request: Request) -> Response:
        name, instance = request.path_params["task"], request.path_params["instance"]
        self._definition(name)
        removed = await run_in_threadpool(self.pyncette.unschedule_task, name, instance)
        if not removed:
            raise NotFoundError(f"task {name!r} has no instance {instance!r}")
        return formats.json_response({"task": name, "instance": instance, "removed": True})

    async def api_strikes(self, request: Request) -> Response:
        strikes = await run_in_threadpool(self.pyncette.strikes)
        return formats.json_response([formats.strike_json(s) for s in strikes])

    async def api_add_strike(self, request: Request) -> Response:
        body = await formats.json_body(request)
        struck = await run_in_threadpool(
            self.pyncette.strike,
            body.get("task"),
            body.get("parameter"),
            body.get("operator"),
            body.get("value"),
        )
        return formats.json_response(formats.strike_json(struck), status=201)

    async def api_restore_strike(self, request: Request) -> Response:
        body = await formats.json_body(request)
        removed = await run_in_threadpool(
            self.pyncette.restore,
            body.get("task"),
            body.get("parameter"),
            body.get("operator"),
            body.get("value"),
        )
        if not removed:
            raise NotFoundError("no such strike")
        return formats.json_response({"removed": True})

    async def api_beats(self, request: Request) -> Response:
        health = await self._health(request)
        return formats.json_response(
            {
                "healthy": health.healthy,
                "now": health.now,
                "beats": [formats.beat_json(b, health.now) for b in health.beats],
                "problems": health.problems,
                "warnings": health.warnings,
                "backlog": None
                if health.backlog is None
                else [
                    {
                        "task": b.task,
                        "due": b.due,
                        "running": b.running,
                        "oldest_due": b.oldest_due,
                    }
                    for b in health.backlog
                ],
            }
        )
