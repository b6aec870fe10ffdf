"""Fixtures of the end-to-end tests: a deployment per test on real brokers and real stores.

The foundation scenarios run on every store with the Redis broker, and on SQLite with RabbitMQ;
the store backends are the contract suite's (``tests/backends``), so each test gets a fresh
namespace that is dropped afterwards.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BROKERS, Deployment, deployment
from tests.support.servers import require_server

#: (broker, store) pairs of the foundation scenarios.
MATRIX = [
    ("redis", "sqlite"),
    ("rabbitmq", "sqlite"),
    ("redis", "postgres"),
    ("redis", "mariadb"),
    ("redis", "redis"),
    ("redis", "dynamodb"),
]


@dataclass(frozen=True)
class StoreConfig:
    """Where the processes of one test keep their schedules."""

    url: str
    namespace: str

    def env(self) -> dict[str, str]:
        return {"E2E_STORE": self.url, "E2E_NAMESPACE": self.namespace}


@pytest.fixture(params=MATRIX, ids=[f"{b}-{s}" for b, s in MATRIX])
def combination(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def broker(combination: tuple[str, str]) -> str:
    name = combination[0]
    url, host, port = BROKERS[name]
    require_server(name, host, port)
    return url


@pytest.fixture
def store(combination: tuple[str, str], tmp_path: Path) -> Iterator[StoreConfig]:
    name = combination[1]
    namespace = f"e2e{uuid.uuid4().hex[:10]}"
    if name == "sqlite":
        yield StoreConfig(f"sqlite:///{tmp_path}/store.sqlite3", namespace)
        return
    backend = importlib.import_module(f"tests.backends.{name}")
    with backend.make_store(namespace) as created:
        yield StoreConfig(created.url, created.namespace)


@pytest.fixture
def deploy(tmp_path: Path, broker: str, store: StoreConfig) -> Iterator[Callable[..., Deployment]]:
    """``deploy(tasks, **env)`` -> a Deployment with no processes started yet."""
    opened: list[Any] = []

    def make(tasks: list[str], **env: str) -> Deployment:
        manager = deployment(tmp_path, broker, store.url, tasks, **{**store.env(), **env})
        opened.append(manager)
        return manager.__enter__()

    yield make
    for manager in reversed(opened):
        manager.__exit__(None, None, None)
