"""Fixtures of the fault tests (see tests/faults/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BROKERS, Deployment, deployment
from tests.support.servers import require_server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault-injection tests with real beats, workers and servers"
    )


@pytest.fixture
def redis_broker() -> str:
    url, host, port = BROKERS["redis"]
    require_server("redis", host, port)
    return url


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """``deploy(broker, store_url, namespace, **env)`` -> a Deployment, no processes started."""
    opened: list[Any] = []

    def make(
        broker: str, store_url: str, namespace: str, tasks: list[str], **env: str
    ) -> Deployment:
        manager = deployment(tmp_path, broker, store_url, tasks, E2E_NAMESPACE=namespace, **env)
        opened.append(manager)
        return manager.__enter__()

    yield make
    for manager in reversed(opened):
        manager.__exit__(None, None, None)
