"""Fixtures: per-process resources set up before the first execution, torn down at shutdown.

A fixture is a generator (or async generator) function that yields its value once. Each worker
process sets up every fixture of the app on its first pyncette execution and tears them down in
reverse order when the process ends (``worker_process_shutdown`` in prefork children,
``worker_shutdown`` in solo/threads pools). A fixture that fails to set up makes that execution
fail loudly; the next execution tries again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from celery import signals

from celery_pyncette.asyncio_bridge import run_coroutine

if TYPE_CHECKING:
    from celery_pyncette.extension import Pyncette

logger = logging.getLogger("celery_pyncette.fixtures")

_lock = threading.RLock()
#: id(Pyncette) -> (pid, values, generators to finish in reverse order)
_active: dict[
    int, tuple[int, dict[str, Any], list[Generator[Any, None, None] | AsyncGenerator[Any, None]]]
] = {}


def fixtures_for(pyncette: Pyncette) -> dict[str, Any]:
    """The fixture values of ``pyncette`` in this process, setting them up on first call."""
    if not pyncette.fixtures:
        return {}
    pid = os.getpid()
    with _lock:
        entry = _active.get(id(pyncette))
        if entry is not None and entry[0] == pid:
            return entry[1]
        values: dict[str, Any] = {}
        generators: list[Generator[Any, None, None] | AsyncGenerator[Any, None]] = []
        try:
            for name, function in pyncette.fixtures.items():
                generator = function()
                values[name] = _advance(generator)
                generators.append(generator)
        except BaseException:
            _finish(generators)
            raise
        _active[id(pyncette)] = (pid, values, generators)
        return values


def _advance(generator: Generator[Any, None, None] | AsyncGenerator[Any, None]) -> Any:
    if isinstance(generator, AsyncGenerator):
        return run_coroutine(generator.__anext__())
    return next(generator)


def _finish(generators: list[Generator[Any, None, None] | AsyncGenerator[Any, None]]) -> None:
    for generator in reversed(generators):
        try:
            _advance(generator)
        except (StopIteration, StopAsyncIteration):
            continue
        except Exception:
            logger.exception("fixture teardown failed")
        else:
            logger.error("fixture %r yielded more than once; it was not finished", generator)


def teardown_all() -> None:
    """Tear down every fixture set up in this process, in reverse order."""
    pid = os.getpid()
    with _lock:
        entries = [(key, entry) for key, entry in _active.items() if entry[0] == pid]
        for key, (_pid, _values, generators) in reversed(entries):
            _finish(generators)
            del _active[key]


def _on_shutdown(**_: Any) -> None:
    teardown_all()


signals.worker_process_shutdown.connect(_on_shutdown, weak=False)
signals.worker_shutdown.connect(_on_shutdown, weak=False)
