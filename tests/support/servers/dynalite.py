"""A DynamoDB emulator for the tests: dynalite in a Node.js subprocess, one per test process.

The first test that needs it starts dynalite (the npm package pinned in ``tests/dynalite``,
installed by ``npm ci`` -- ``make test`` and ``.ci/run`` do it, so nothing is downloaded at test
time) with ``tests/dynalite/serve.js`` on a free loopback port, in memory, and waits (bounded)
until it answers HTTP; the server is stopped when the test process exits. Stores reach it through
boto3 over HTTP with ``endpoint_url``, exactly as they reach AWS: nothing in the store or boto3 is
patched. ``serve.js`` patches one thing in dynalite itself: its secondary-index keys, which could
file two instances due at the same moment under one entry (see there and
``docs/stores/dynamodb.md``).

Requests are served as they come, concurrently. dynalite applies each conditional write
atomically (it locks the item between checking the condition and writing), as DynamoDB does, so
concurrent claims race for real here and the concurrency tests test the store.

When the server cannot start (no ``node``, dynalite not installed, or it does not answer), tests
skip with the reason on a developer's machine and fail when ``CI=true`` (see
:mod:`tests.support.servers`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from tests.support.servers import IN_CI

REGION = "us-east-1"
START_TIMEOUT = 20.0
#: The npm project that pins dynalite (``npm ci`` there installs it) and starts it (``serve.js``:
#: dynalite in memory on 127.0.0.1, tables ACTIVE at once, a client that dies mid-request logged
#: rather than ending the server -- dynalite's own ``cli.js`` would exit then).
DYNALITE_DIR = Path(__file__).resolve().parents[2] / "dynalite"
DYNALITE_PACKAGE = DYNALITE_DIR / "node_modules" / "dynalite" / "package.json"
#: Dummy credentials: a test must never reach real AWS, whatever the developer's environment holds.
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


class EmulatorServer:
    """One running dynalite subprocess."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.endpoint_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


_lock = threading.Lock()
_server: EmulatorServer | None = None
_failure: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint_url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _log_tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def _command(port: int) -> list[str]:
    """dynalite's command line, or RuntimeError naming what is missing."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node (Node.js) is not on PATH")
    if not DYNALITE_PACKAGE.is_file():
        raise RuntimeError(f"{DYNALITE_PACKAGE} is missing: run `npm ci` in {DYNALITE_DIR}")
    return [node, str(DYNALITE_DIR / "serve.js"), str(port)]


def _start() -> EmulatorServer:
    """Start the server; try another port if it exits at once (the port was taken meanwhile)."""
    problem = "not started"
    for _ in range(3):
        port = _free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        process = subprocess.Popen(
            _command(port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = EmulatorServer(process, port, log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(server.endpoint_url):
                return server
            time.sleep(0.05)
        exited = process.poll() is not None
        problem = (
            f"dynalite exited with {process.returncode}"
            if exited
            else f"dynalite did not answer within {START_TIMEOUT:.0f} s"
        )
        problem = f"{problem}: {_log_tail(log)}"
        server.stop()
        if not exited:
            break
    raise RuntimeError(problem)


def dynamodb_endpoint() -> str:
    """The endpoint URL of the process's dynalite server; skips (locally) or fails (CI) without."""
    global _server, _failure
    with _lock:
        if _server is None and _failure is None:
            try:
                _server = _start()
                atexit.register(_server.stop)
            except (OSError, RuntimeError) as exc:
                _failure = f"the DynamoDB emulator (dynalite) cannot start: {exc}"
        if _server is not None and _server.process.poll() is not None:
            _failure = f"the DynamoDB emulator (dynalite) died: {_log_tail(_server.log)}"
            _server = None
    if _failure is not None:
        if IN_CI:
            pytest.fail(f"{_failure} (CI=true: server tests must run, not skip)")
        pytest.skip(_failure)
    assert _server is not None
    return _server.endpoint_url


@contextlib.contextmanager
def aws_environment() -> Iterator[None]:
    """Dummy AWS credentials in the environment for the duration (restored afterwards)."""
    saved = {name: os.environ.get(name) for name in (*AWS_ENVIRONMENT, *_CLEARED)}
    os.environ.update(AWS_ENVIRONMENT)
    for name in _CLEARED:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@functools.cache
def admin_client(endpoint_url: str) -> Any:
    """A plain boto3 client of the emulator, for test set-up and inspection (not the store's)."""
    return boto3.session.Session().client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def store_url(endpoint_url: str, table: str, **params: str) -> str:
    """A store URL for ``table`` on the emulator, with extra query parameters."""
    pairs = {"endpoint_url": endpoint_url, **params}
    query = "&".join(f"{name}={value}" for name, value in pairs.items())
    return f"dynamodb://{REGION}/{table}?{query}"
