"""What every route of the dashboard shares: access checks, error answers, rendering, redirects.

A handler is wrapped by :meth:`Site.page` (a read, answered with HTML), :meth:`Site.form` (a write
from a form: errors go back to the form's page as a message), :meth:`Site.api` or
:meth:`Site.api_write` (JSON, errors as ``{"error": ...}``). Each wrapper runs the
:class:`~celery_pyncette.dashboard._security.Guard` first and maps errors to statuses: 401/403/405
(refused), 404 (:class:`NotFoundError`), 503 (the store failed), 409 (the instance is running),
400 (bad input).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from celery_pyncette import _clock as clock
from celery_pyncette import _read_model
from celery_pyncette._extension import Pyncette
from celery_pyncette._strikes import OPERATOR_NAMES as STRIKE_OPERATORS
from celery_pyncette.dashboard import _flash, _formats
from celery_pyncette.dashboard._security import SESSION_COOKIE, AccessDeniedError, Guard
from celery_pyncette.dashboard._templates import TEMPLATES
from celery_pyncette.errors import PyncetteError, StoreError, TaskLockedError

Handler = Callable[[Request], Awaitable[Response]]


class NotFoundError(Exception):
    """404: no such task or instance."""


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` (rows of the read model, or plain JSON values) as a JSON response."""
    return Response(
        json.dumps(_read_model.to_json(body)), status_code=status, media_type="application/json"
    )


class Site:
    """One dashboard's settings, templates and request plumbing."""

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
            **_formats.TEMPLATE_HELPERS,
        )

    # --- wrappers -------------------------------------------------------------------------------

    def page(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=False, api=False)

    def form(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=True, api=False)

    def api(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=False, api=True)

    def api_write(self, handler: Handler) -> Handler:
        return self._wrap(handler, write=True, api=True)

    def _wrap(self, handler: Handler, *, write: bool, api: bool) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                await self.guard.check(request, write=write)
                response = await handler(request)
            except AccessDeniedError as denied:
                response = self.refusal(request, denied.status, denied.reason, api, denied)
            except NotFoundError as exc:
                response = self.refusal(request, 404, str(exc), api)
            except StoreError as exc:
                response = self.refusal(request, 503, f"the store failed: {exc}", api)
            except TaskLockedError as exc:
                if api or not write:
                    response = self.refusal(request, 409, str(exc), api)
                else:
                    response = self.back(request, error=f"{exc} (tick “replace while running”)")
            except (ValueError, PyncetteError) as exc:
                if api or not write:
                    response = self.refusal(request, 400, str(exc), api)
                else:
                    response = self.back(request, error=str(exc))
            self._keep_session(request, response)
            return response

        return endpoint

    # --- answers --------------------------------------------------------------------------------

    def refusal(
        self,
        request: Request,
        status: int,
        reason: str,
        api: bool,
        denied: AccessDeniedError | None = None,
    ) -> Response:
        """The error as JSON (``api``) or as a page; a 401 page offers the sign-in form."""
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
                path=_formats.root(request) or "/",
            )

    def url(self, request: Request, path: str) -> str:
        """``path`` under the dashboard's mount point."""
        return _formats.root(request) + path

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        status: int = 200,
    ) -> HTMLResponse:
        """A page: ``template`` with ``context`` and what every page shows (the flash message)."""
        now = clock.utcnow()
        flash = _flash.read(request, self.guard)
        values = {
            "request": request,
            "url": lambda path: self.url(request, path),
            "relative": lambda value: _formats.relative(value, now),
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
            _flash.clear(request, response)
        return response

    def back(
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
        target = self.url(request, path) if path else _formats.same_site_referer(request)
        return _flash.redirect(request, target, self.guard, error=error, notice=notice)
