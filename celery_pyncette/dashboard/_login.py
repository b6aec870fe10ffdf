"""``/login``: sign in with the dashboard's token; the browser keeps an HMAC of it in a cookie.

``GET`` shows the form (401), ``POST`` checks the token: right, a 303 to ``/`` with the cookie;
wrong, the form again (401). Without a token configured, both redirect to ``/``. The
authorisation hook and the same-site check apply, the token check does not (this is where the
token is given).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from celery_pyncette.dashboard import _formats
from celery_pyncette.dashboard._security import AUTH_COOKIE, AccessDeniedError, form_data
from celery_pyncette.dashboard._site import Site


def route(site: Site) -> Route:
    """The sign-in page and its form's target."""

    async def login(request: Request) -> Response:
        guard = site.guard
        try:
            await guard.check_hook(request)
            if request.method != "GET":
                guard.check_same_site(request)
        except AccessDeniedError as denied:
            return site.refusal(request, denied.status, denied.reason, False)
        if guard.token is None:
            return RedirectResponse(site.url(request, "/"), status_code=303)
        if request.method == "GET":
            return site.refusal(request, 401, "", False, AccessDeniedError(401, "sign in"))
        supplied = (await form_data(request)).get("token", "")
        if not guard.token_matches(supplied):
            return site.render(
                request,
                "message.html",
                {"heading": "Sign in", "message": "Wrong token.", "login": True},
                status=401,
            )
        response = RedirectResponse(site.url(request, "/"), status_code=303)
        response.set_cookie(
            AUTH_COOKIE,
            guard.auth_cookie_value(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=_formats.root(request) or "/",
        )
        return response

    return Route("/login", login, methods=["GET", "POST"], name="login")
