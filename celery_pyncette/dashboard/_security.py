"""Who may see the dashboard, and which writes are genuine.

Every request passes, in order:

1. the **token** (when ``create_app(token=...)``): an ``Authorization: Bearer <token>`` header, or
   the cookie set by the login form (an HMAC of the token, never the token itself);
2. the **authorisation hook** (when ``create_app(authorize=...)``): ``authorize(request)`` returns
   (or awaits to) a bool; false is a 403;
3. for a write (any method but GET/HEAD/OPTIONS): the dashboard must be ``writable``; the request
   must not come from another site (``Origin`` / ``Sec-Fetch-Site``); and it must carry the CSRF
   token of its session (form field ``csrf_token`` or header ``X-CSRF-Token``): an HMAC of the
   session cookie under the app's secret, so another site can neither read nor forge it. Requests
   authenticated by a bearer header are exempt from the CSRF token (browsers never add that header
   on their own).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

#: ``authorize(request) -> bool`` (or an async function returning a bool).
Authorize = Callable[[Request], "bool | Awaitable[bool]"]

SESSION_COOKIE = "pyncette_session"
AUTH_COOKIE = "pyncette_auth"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AccessDeniedError(Exception):
    """A refused request: ``status`` 401 (who are you), 403 (not allowed) or 405 (read-only)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Guard:
    """The checks above, configured once per dashboard app."""

    def __init__(
        self,
        *,
        writable: bool,
        authorize: Authorize | None,
        token: str | None,
        secret: str | bytes | None,
    ) -> None:
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string")
        if authorize is not None and not callable(authorize):
            raise ValueError(f"authorize must be callable, got {authorize!r}")
        self.writable = writable
        self.authorize = authorize
        self.token = token
        if secret is None:
            # Derived from the token, every process of one deployment agrees; else per process.
            secret = (
                hashlib.sha256(b"celery-pyncette:" + token.encode()).digest() if token else None
            )
        self._secret = (
            secret.encode() if isinstance(secret, str) else (secret or secrets.token_bytes(32))
        )

    def sign(self, value: str) -> str:
        """An HMAC of ``value`` under this app's secret."""
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()

    def auth_cookie_value(self) -> str:
        """What the login form stores in the auth cookie."""
        return self.sign("auth:" + (self.token or ""))

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the configured token."""
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )

    def bearer(self, request: Request) -> bool:
        """True when the request carries the right bearer token."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def authenticated(self, request: Request) -> bool:
        """Token check only (True when no token is configured)."""
        if self.token is None or self.bearer(request):
            return True
        cookie = request.cookies.get(AUTH_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.auth_cookie_value().encode())

    async def check(self, request: Request, *, write: bool) -> None:
        """Raise :class:`AccessDeniedError` unless the request may go on."""
        if not self.authenticated(request):
            raise AccessDeniedError(401, "a token is required")
        await self.check_hook(request)
        if request.method in SAFE_METHODS:
            return
        self.check_same_site(request)
        if not write or not self.writable:
            raise AccessDeniedError(405, "this dashboard is read-only")
        if self.token is not None and self.bearer(request):
            return
        supplied = request.headers.get(CSRF_HEADER)
        if supplied is None:
            supplied = (await form_data(request)).get(CSRF_FIELD, "")
        if not hmac.compare_digest(supplied.encode(), self.csrf_token(request).encode()):
            raise AccessDeniedError(
                403, "missing or wrong CSRF token: reload the page and try again"
            )

    async def check_hook(self, request: Request) -> None:
        """Ask the authorisation hook, if any; anything but ``True`` is a 403."""
        if self.authorize is not None:
            allowed: Any = self.authorize(request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if allowed is not True:
                raise AccessDeniedError(403, "not authorised")

    def check_same_site(self, request: Request) -> None:
        """Refuse a write sent by a page of another site."""
        if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
            raise AccessDeniedError(403, "cross-site request refused")
        origin = request.headers.get("origin")
        if origin is not None and origin != "null":
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin.rstrip("/") != own:
                raise AccessDeniedError(403, "cross-origin request refused")

    def session(self, request: Request) -> str:
        """This browser's session id (from its cookie, or a new one set on the response)."""
        existing = request.cookies.get(SESSION_COOKIE)
        if existing and len(existing) == 43:
            return existing
        fresh: str | None = request.scope.setdefault("pyncette.new_session", None)
        if fresh is None:
            fresh = secrets.token_urlsafe(32)
            request.scope["pyncette.new_session"] = fresh
        return fresh

    def csrf_token(self, request: Request) -> str:
        """The token forms of this session must send back."""
        return self.sign("csrf:" + self.session(request))


async def form_data(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each field).

    Parsed here with the standard library, so the dashboard needs no multipart parser.
    """
    cached: dict[str, str] | None = request.scope.get("pyncette.form")
    if cached is not None:
        return cached
    from urllib.parse import parse_qsl

    parsed: dict[str, str] = {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type == "application/x-www-form-urlencoded":
        body = (await request.body()).decode("utf-8", errors="replace")
        for key, value in parse_qsl(body, keep_blank_values=True):
            parsed.setdefault(key, value)
    request.scope["pyncette.form"] = parsed
    return parsed
