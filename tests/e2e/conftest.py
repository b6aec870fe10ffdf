"""Fixtures of the end-to-end tests: a deployment per test on each real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BROKERS, Deployment, deployment
from tests.servers import require_server


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    url, host, port = BROKERS[request.param]
    require_server(request.param, host, port)
    return url


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.sqlite3"


@pytest.fixture
def deploy(tmp_path: Path, broker: str, store_url: str) -> Iterator[Callable[..., Deployment]]:
    """``deploy(tasks, **env)`` -> a Deployment with no processes started yet."""
    opened: list[Any] = []

    def make(tasks: list[str], **env: str) -> Deployment:
        manager = deployment(tmp_path, broker, store_url, tasks, **env)
        opened.append(manager)
        return manager.__enter__()

    yield make
    for manager in reversed(opened):
        manager.__exit__(None, None, None)
