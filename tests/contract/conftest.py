"""Runs the contract suite over every store: one module per backend in ``tests/backends``.

A backend module exposes ``NAME`` and ``make_store(namespace)``, a context manager yielding a fresh,
empty, set-up store (it calls :func:`tests.servers.require_server` when it needs a server).
Optional: ``make_second_client(store)`` yields another client of the same backend (another
"process") for concurrency tests; without it the same store object is shared by threads.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from types import ModuleType

import pytest

import tests.backends
from celery_pyncette.stores.base import Store


def _backends() -> list[ModuleType]:
    return [
        importlib.import_module(f"tests.backends.{info.name}")
        for info in pkgutil.iter_modules(tests.backends.__path__)
        if not info.name.startswith("_")  # shared helpers, not backends
    ]


BACKENDS = _backends()


@pytest.fixture(params=BACKENDS, ids=[b.NAME for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store(backend: ModuleType) -> Iterator[Store]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with backend.make_store(namespace) as created:
        yield created
