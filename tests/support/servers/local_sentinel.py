"""A private Redis Sentinel deployment: a primary, a replica and three sentinels on loopback.

Every process is a :class:`~tests.support.servers.local_redis.RedisServer` on a free port in one
temporary directory (a sentinel is ``redis-server <conf> --sentinel``: it rewrites its config
file). Every wait is bounded in time; the processes die with the test process. A deployment
shared by a test process (:func:`session_sentinel`) serves the contract suite; tests that fail
over make their own (:func:`private_sentinel`).
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from tests.support.servers.local_redis import (
    START_TIMEOUT,
    RedisServer,
    free_port,
    require_redis_binaries,
)

SERVICE = "pyncette-primary"
#: How long a failover may take, from SENTINEL FAILOVER to every sentinel naming the new primary.
FAILOVER_TIMEOUT = 30.0
#: A replica (re)syncs at once (not after the default 5 s wait for others); AOF as in production.
_REPLICATION = ("--repl-diskless-sync-delay", "0", "--appendonly", "yes")


def master_state(client: Any) -> dict[str, str]:
    """``SENTINEL MASTER`` of the service, as text. Sent raw: redis-py's ``sentinel_*`` helpers
    pass options (``once``, ``return_responses``) that its reply parsers on a plain client refuse
    before redis-py 7, the floor ``make test-oldest`` runs on (newer ones parse the reply into a
    mapping, older ones leave a flat list)."""
    reply = client.execute_command("SENTINEL", "MASTER", SERVICE)
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {_text(name): _text(value) for name, value in pairs}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelServer(RedisServer):
    """``redis-server <config> --sentinel``: a sentinel monitoring :data:`SERVICE`."""

    def __init__(self, directory: Path, port: int, primary_port: int) -> None:
        super().__init__(directory, port)
        self.primary_port = primary_port

    def start(self) -> SentinelServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        if not config.exists():  # a restarted sentinel keeps what it learnt
            config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
        self.options = (str(config), "--sentinel")
        super().start()
        return self

    def _command(self) -> list[str]:
        # the config file must come first; sentinels take no persistence options
        return [
            "redis-server",
            *self.options,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip


class LocalSentinel:
    """A primary, one replica and three sentinels (quorum 2), in a temporary directory."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pyncette-redis-sentinel-"))
        ports: list[int] = []
        for _ in range(5):
            ports.append(free_port(taken=ports))
        replica_of = ("--replicaof", "127.0.0.1", str(ports[0]))
        self.servers = [
            RedisServer(self.directory / "node0", ports[0], *_REPLICATION),
            RedisServer(self.directory / "node1", ports[1], *_REPLICATION, *replica_of),
        ]
        self.sentinels = [
            SentinelServer(self.directory / f"sentinel{n}", ports[2 + n], ports[0])
            for n in range(3)
        ]

    def url(self, db: int = 0, **options: str) -> str:
        """The store URL: every sentinel, the service name, the database and ``options``."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        query = "".join(f"&{k}={v}" for k, v in options.items())
        return f"redis+sentinel://{hosts}/{db}?service_name={SERVICE}{query}"

    def start(self) -> LocalSentinel:
        try:
            for server in [*self.servers, *self.sentinels]:
                server.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError):
                if condition():
                    return
            if time.monotonic() > deadline:
                logs = {
                    p.directory.name: (p.directory / "redis.log").read_text(errors="replace")
                    for p in [*self.servers, *self.sentinels]
                }
                logs = {name: log[-1500:] for name, log in logs.items()}
                raise RuntimeError(f"local Redis Sentinel: timed out waiting for {what}: {logs}")
            time.sleep(0.1)

    @staticmethod
    @contextlib.contextmanager
    def _client(port: int) -> Iterator[redis.Redis]:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            yield client
        finally:
            client.close()

    def _replication(self, server: RedisServer) -> dict[str, object]:
        with self._client(server.port) as client:
            info: dict[str, object] = client.info("replication")
        return info

    def role(self, server: RedisServer) -> str:
        return str(self._replication(server)["role"])

    def replica_in_sync(self) -> bool:
        """The replica's link to the primary is up (it has the full data set)."""
        return self._replication(self.replica()).get("master_link_status") == "up"

    def wait_ready(self, timeout: float = START_TIMEOUT + 15) -> None:
        """Wait (bounded) until the replica is in sync and every sentinel names the primary,
        knows the replica and knows the two other sentinels (so any of them can fail over)."""
        primary = self.primary()

        def ready() -> bool:
            if not self.replica_in_sync():
                return False
            for sentinel in self.sentinels:
                with self._client(sentinel.port) as client:
                    state = master_state(client)
                assert isinstance(state, dict)
                if int(str(state.get("port", 0))) != primary.port:
                    return False
                if int(str(state.get("num-slaves", 0))) < 1:
                    return False
                if int(str(state.get("num-other-sentinels", 0))) < 2:
                    return False
            return True

        self._wait(ready, "the replica and the sentinels to see each other", timeout)

    def named_primary(self, sentinel: SentinelServer) -> int:
        with self._client(sentinel.port) as client:
            state = master_state(client)
        assert isinstance(state, dict)
        return int(str(state["port"]))

    def primary(self) -> RedisServer:
        """The server the first sentinel names as the primary."""
        port = self.named_primary(self.sentinels[0])
        return next(s for s in self.servers if s.port == port)

    def replica(self) -> RedisServer:
        port = self.primary().port
        return next(s for s in self.servers if s.port != port)

    def failover(self, timeout: float = FAILOVER_TIMEOUT) -> RedisServer:
        """``SENTINEL FAILOVER``; wait (bounded) until every sentinel names the replica, the
        replica is a primary and the old primary has become its replica. Returns the new one."""
        old, new = self.primary(), self.replica()
        with self._client(self.sentinels[0].port) as client:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        self.wait_switched(old, new, timeout)
        return new

    def wait_switched(
        self, old: RedisServer, new: RedisServer, timeout: float = FAILOVER_TIMEOUT
    ) -> None:
        """Wait until every sentinel names ``new`` and it is a primary; and, when ``old`` still
        runs, until it is ``new``'s replica again."""

        def switched() -> bool:
            if any(self.named_primary(s) != new.port for s in self.sentinels):
                return False
            if self.role(new) != "master":
                return False
            return old.process is None or self.role(old) == "slave"

        self._wait(switched, f"the failover from {old.port} to {new.port}", timeout)

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def private_sentinel() -> Iterator[LocalSentinel]:
    """A deployment of its own for a test that fails over, stopped and removed afterwards."""
    require_redis_binaries()
    deployment = LocalSentinel().start()
    try:
        yield deployment
    finally:
        deployment.stop()


_session: LocalSentinel | None = None
_session_lock = threading.Lock()


def session_sentinel() -> LocalSentinel:
    """The deployment shared by this test process: started on first use, stopped at exit. Tests
    using it must not fail it over."""
    global _session
    require_redis_binaries()
    with _session_lock:
        if _session is None:
            deployment = LocalSentinel().start()
            atexit.register(deployment.stop)
            _session = deployment
        return _session
