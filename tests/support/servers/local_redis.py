"""Private Redis servers for the tests: a throw-away ``redis-server`` and a 3-master local cluster.

The cluster is started lazily, once per test process, the first time a cluster test asks for it
(:func:`session_cluster`), and stopped when the process exits. Every wait is bounded in time;
servers die with the test process even when it is killed (``PR_SET_PDEATHSIG`` on Linux).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from tests.support.servers import IN_CI

START_TIMEOUT = 15.0


def require_redis_binaries() -> None:
    """Skip (locally) or fail (``CI=true``) when redis-server / redis-cli are not installed."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: server tests must run, not skip)")
    pytest.skip(message)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(with_bus: bool = False, taken: Collection[int] = ()) -> int:
    """A free loopback port in 20000-29999, not in ``taken``; with ``with_bus`` also
    ``port + 10000`` (the cluster bus, so client ports and bus ports never overlap) is free."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if port in taken:
            continue
        if _bindable(port) and (not with_bus or _bindable(port + 10000)):
            return port
    raise RuntimeError("no free loopback port found")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RedisServer:
    """One ``redis-server`` process on a loopback port, its data in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None, *options: str) -> None:
        self.directory = directory
        self.port = port or free_port(with_bus="--cluster-enabled" in options)
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            *self.options,
        ]  # fmt: skip

    def start(self) -> RedisServer:
        """Start the server and wait (bounded) until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server on {self.port} exited: {log}")
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """``kill -9`` the server and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its socket but answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@contextlib.contextmanager
def private_server(*options: str) -> Iterator[RedisServer]:
    """A throw-away server in a temporary directory, stopped and removed afterwards."""
    require_redis_binaries()
    with tempfile.TemporaryDirectory(prefix="pyncette-redis-") as directory:
        server = RedisServer(Path(directory), None, *options).start()
        try:
            yield server
        finally:
            server.stop()


class LocalCluster:
    """Three masters, no replicas, on free loopback ports in a temporary directory."""

    def __init__(self, size: int = 3) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pyncette-redis-cluster-"))
        ports: list[int] = []
        for _ in range(size):
            ports.append(free_port(with_bus=True, taken=ports))
        self.servers = [
            RedisServer(
                self.directory / f"node{n}",
                ports[n],
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.directory / f"node{n}" / "nodes.conf"),
                "--cluster-node-timeout",
                "2000",
            )
            for n in range(size)
        ]

    @property
    def url(self) -> str:
        """The store URL: any one node; the client discovers the others."""
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def start(self) -> LocalCluster:
        try:
            for server in self.servers:
                server.start()
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=START_TIMEOUT,
            )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self) -> None:
        """Wait (bounded) until every node reports cluster_state:ok."""
        deadline = time.monotonic() + START_TIMEOUT
        clients = [redis.Redis(port=port, socket_timeout=1) for port in self.ports]
        try:
            while True:
                states = [c.execute_command("CLUSTER INFO") for c in clients]
                if all(b"cluster_state:ok" in _as_bytes(s) for s in states):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"local Redis Cluster not ok: {states}")
                time.sleep(0.1)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        return "\n".join(f"{k}:{v}" for k, v in value.items()).encode()
    return str(value).encode()


_session: LocalCluster | None = None
_session_lock = threading.Lock()


def session_cluster() -> LocalCluster:
    """The cluster shared by this test process: started on first use, stopped at exit."""
    global _session
    require_redis_binaries()
    with _session_lock:
        if _session is None:
            cluster = LocalCluster().start()
            atexit.register(cluster.stop)
            _session = cluster
        return _session


def delete_namespace(client: redis.Redis | redis.RedisCluster, namespace: str) -> None:
    """Delete every key of ``namespace`` (SCAN MATCH ``namespace:*``, on every cluster node)."""
    pattern = _glob_escape(namespace) + ":*"
    if isinstance(client, redis.RedisCluster):
        nodes = [client.get_redis_connection(n) for n in client.get_primaries()]
    else:
        nodes = [client]
    for node in nodes:
        by_slot: dict[int, list[bytes]] = {}
        for key in node.scan_iter(match=pattern, count=1000):
            # On a cluster node one UNLINK may only name keys of one slot.
            by_slot.setdefault(key_slot(key), []).append(key)
        for keys in by_slot.values():
            for start in range(0, len(keys), 500):
                node.unlink(*keys[start : start + 500])


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
