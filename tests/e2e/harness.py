"""Real ``celery beat`` and ``celery worker`` processes for end-to-end tests.

Executions are observed through a side channel: the tasks of :mod:`tests.e2e.proj` append one
JSON line per execution to a file. Waiting for a process to do something is bounded in time and
polls that file; nothing here sleeps for a fixed time to "let things happen".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

BROKERS = {
    "redis": ("redis://127.0.0.1:6379/15", "127.0.0.1", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", "127.0.0.1", 5672),
}

Event = dict[str, Any]


class Deployment:
    """One isolated project deployment: its own queue, store, side channel and processes."""

    def __init__(self, tmp: Path, broker: str, store: str, tasks: list[str], **env: str) -> None:
        self.tmp = tmp
        self.events_path = tmp / "events.jsonl"
        self.events_path.touch()
        self.queue = f"e2e-{uuid.uuid4().hex[:10]}"
        self.broker = broker
        self.store = store
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "E2E_BROKER": broker,
            "E2E_STORE": store,
            "E2E_QUEUE": self.queue,
            "E2E_EVENTS": str(self.events_path),
            "E2E_TASKS": ",".join(tasks),
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.must_live: set[str] = set()
        #: The module ``celery -A`` loads (one that exposes :mod:`tests.e2e.proj`'s app).
        self.app_module = "tests.e2e.proj"

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", self.app_module, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> subprocess.Popen[bytes]:
        return self._start(
            name,
            "worker",
            "-l",
            "INFO",
            "-c",
            str(concurrency),
            "-Q",
            self.queue,
            "-n",
            f"{name}-{self.queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        )

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self._start(
            name,
            "beat",
            "-S",
            "pyncette",
            "-l",
            "INFO",
            "--pidfile=",
            "-s",
            str(self.tmp / f"{name}-unused-schedule"),
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and all its children (a prefork worker's pool too)."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def events(self) -> list[Event]:
        lines = self.events_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for(
        self, condition: Callable[[list[Event]], bool], timeout: float, what: str
    ) -> list[Event]:
        """Poll the side channel until ``condition(events)`` holds; fail with the logs otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if condition(events):
                return events
            for name, process in self.processes.items():
                if process.poll() is not None and name in self.must_live:
                    raise AssertionError(
                        f"{name} exited ({process.returncode}):\n{self.log(name)[-4000:]}"
                    )
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n} ---\n{self.log(n)[-3000:]}" for n in self.processes)
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; events={events}\n{logs}"
                )
            time.sleep(0.1)


@contextmanager
def deployment(
    tmp: Path, broker: str, store: str, tasks: list[str], **env: str
) -> Iterator[Deployment]:
    deployed = Deployment(tmp, broker, store, tasks, **env)
    try:
        yield deployed
    finally:
        deployed.stop_all()
        _delete_queue(broker, deployed.queue)


def _delete_queue(broker: str, queue: str) -> None:
    from kombu import Connection

    try:
        with Connection(broker, connect_timeout=3) as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
    except Exception:
        pass


def by_occurrence(events: list[Event], task: str) -> dict[str, list[Event]]:
    """Executions of ``task`` grouped by their ``scheduled_at``."""
    grouped: dict[str, list[Event]] = {}
    for event in events:
        if event["task"] == task:
            grouped.setdefault(event["scheduled_at"], []).append(event)
    return grouped


# --- helpers of the fault tests (tests/faults) ----------------------------------------------------


@contextmanager
def extra_env(deployed: Deployment, **env: str) -> Iterator[None]:
    """Processes started inside the block also get ``env`` (e.g. one beat with a skewed clock)."""
    saved = deployed.env
    deployed.env = {**saved, **env}
    try:
        yield
    finally:
        deployed.env = saved


def start_solo_worker(deployed: Deployment, name: str) -> None:
    """A worker with the solo pool: one process, no pool IPC (the cheapest real worker)."""
    deployed._start(
        name,
        "worker",
        "-l",
        "INFO",
        "-P",
        "solo",
        "-Q",
        deployed.queue,
        "-n",
        f"{name}-{deployed.queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )


def event_count(deployed: Deployment) -> int:
    """How many executions the side channel holds, without parsing it."""
    return deployed.events_path.read_bytes().count(b"\n")


def wait_until(
    deployed: Deployment,
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> float:
    """Poll ``condition()`` until it holds; return the seconds it took. Fails with the processes'
    logs on timeout, or at once when a process in ``must_live`` exits."""
    started = time.monotonic()
    deadline = started + timeout
    while not condition():
        for name, process in deployed.processes.items():
            if process.poll() is not None and name in deployed.must_live:
                raise AssertionError(
                    f"{name} exited ({process.returncode}):\n{deployed.log(name)[-4000:]}"
                )
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n} ---\n{deployed.log(n)[-3000:]}" for n in deployed.processes)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(interval)
    return time.monotonic() - started
