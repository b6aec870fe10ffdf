"""A loopback TCP proxy that a fault test puts between the processes and a shared server.

The shared servers (PostgreSQL, Redis) must never be stopped: other tests use them at the same
time. A test points its processes at a :class:`Proxy` instead and takes the *proxy* down: every
open connection is cut and every new one is reset at once, as a server that stopped would look.
:meth:`Proxy.up` lets connections through again. :meth:`Proxy.pause` holds every further
request instead (the server answers what it already received, and receives nothing more), as a
hung server or network would look. The listening port stays bound the whole time, so no other
test can take it during an outage.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds a write to one side may block before that connection is dropped.
SEND_TIMEOUT = 10.0


def _reset(sock: socket.socket) -> None:
    """Close abruptly (RST, not FIN), waking any thread blocked on the socket."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self._closed = threading.Lock()
        self.is_cut = False

    def cut(self) -> None:
        if self._closed.acquire(blocking=False):
            self.is_cut = True
            _reset(self.client)
            _reset(self.server)


class Proxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` until taken :meth:`down`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = threading.Event()
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        #: Connections forwarded, and connections reset while down (for the test's report).
        self.forwarded = 0
        self.refused = 0
        self._accepting = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._accepting.start()

    def url(self, template: str) -> str:
        """``template`` with ``{port}`` replaced: ``proxy.url("redis://127.0.0.1:{port}/9")``."""
        return template.format(port=self.port)

    def down(self) -> None:
        """Cut every open connection, dropping any bytes held by :meth:`pause`; reset every new
        connection until :meth:`up`."""
        self._up.clear()
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.cut()
        self._flowing.set()  # wake the stalled pumps: their links are cut, they drop what they hold

    def up(self) -> None:
        """Forward new connections again."""
        self._up.set()

    def pause(self) -> None:
        """Hold every byte clients send from now on; replies to what the server already received
        still come back. A client then hangs on its next request, and that request is never
        delivered if the connection is cut (:meth:`down`) before :meth:`resume`."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward what was held, and everything after."""
        self._flowing.set()

    def close(self) -> None:
        self._stopped.set()
        self.down()
        self._accepting.join(5)
        _reset(self._listener)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            for sock in (client, server):
                sock.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                if not self._up.is_set():  # went down while connecting
                    link.cut()
                    continue
                self._links.add(link)
                self.forwarded += 1
            for source, sink, request in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump,
                    args=(link, source, sink, request),
                    name="proxy-pump",
                    daemon=True,
                ).start()

    def _pump(
        self, link: _Link, source: socket.socket, sink: socket.socket, requests: bool
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if requests:
                    self._flowing.wait()
                if link.is_cut:
                    break
                sink.settimeout(SEND_TIMEOUT)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._links.discard(link)
            link.cut()


@contextmanager
def proxy_to(host: str, port: int) -> Iterator[Proxy]:
    """A running proxy to ``host:port``, closed afterwards."""
    started = Proxy(host, port)
    try:
        yield started
    finally:
        started.close()
