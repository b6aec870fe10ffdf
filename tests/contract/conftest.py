"""Runs the contract suite over every store: one module per backend in ``tests/backends``.

A backend module exposes ``NAME`` and ``make_store(namespace)``, a context manager yielding a fresh,
empty, set-up store (it calls :func:`tests.support.servers.require_server` when it needs a server).
Optional: ``make_second_client(store)`` yields another client of the same backend (another
"process") for concurrency tests; without it the same store object is shared by threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import ModuleType

import pytest

from celery_pyncette.stores.base import Store
from tests.backends import all_backends

BACKENDS = all_backends()


@pytest.fixture(params=BACKENDS, ids=[b.NAME for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store(backend: ModuleType) -> Iterator[Store]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with backend.make_store(namespace) as created:
        yield created


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out a test marked ``garbage(kind)`` for a backend whose ``kind`` list is empty.

    Such a backend cannot hold that garbage at all (the memory store holds Python objects), so
    the test does not apply to it: it is deselected, not skipped.
    """
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("garbage")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if marker is not None and backend is not None and not getattr(backend, marker.args[0]):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
