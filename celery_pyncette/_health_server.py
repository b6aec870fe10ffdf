"""Beat's HTTP health endpoint: ``GET /healthz`` answers a ``_health.Verdict``.

200 with ``healthy`` when the verdict has no problems; 503 with ``unhealthy`` and one problem per
line otherwise; ``HEAD`` answers the same status without a body; any other path is 404. The
server is the standard library's :class:`http.server.ThreadingHTTPServer` on a daemon thread, so
probes never wait for a tick and a tick never waits for a probe.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celery_pyncette._health import Verdict

logger = logging.getLogger("celery_pyncette.health")

PATH = "/healthz"
#: Seconds a client may take to send its request before the connection is dropped.
REQUEST_TIMEOUT = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], verdict: Callable[[], Verdict]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.verdict = verdict
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        if self.path.split("?", 1)[0] != PATH:
            self._send(
                HTTPStatus.NOT_FOUND, f"not found; the health endpoint is {PATH}\n", with_body
            )
            return
        try:
            verdict = self.server.verdict()
        except Exception as exc:  # a bug in the verdict must still answer, and say so
            logger.exception("the health verdict failed")
            verdict = Verdict((f"the health verdict failed: {type(exc).__name__}: {exc}",))
        status = HTTPStatus.OK if verdict.healthy else HTTPStatus.SERVICE_UNAVAILABLE
        self._send(status, verdict.body(), with_body)

    def _send(self, status: HTTPStatus, text: str, with_body: bool) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class HealthServer:
    """Serves ``verdict()`` on ``host:port`` from a daemon thread until :meth:`close`.

    Binding happens in the constructor: a port in use (or an address that cannot be bound) raises
    :class:`OSError` there, before any thread starts.
    """

    def __init__(self, host: str, port: int, verdict: Callable[[], Verdict]) -> None:
        self._server = _Server((host, port), verdict)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="pyncette-health",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the port the OS chose when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop serving and release the port; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
