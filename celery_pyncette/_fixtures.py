"""Fixtures: per-process resources set up before the first execution, torn down at shutdown.

A fixture is a generator (or async generator) function that yields its value once. Each worker
process sets up every fixture of the app on its first pyncette execution and tears them down in
reverse order when the process ends (``worker_process_shutdown`` in prefork children,
``worker_shutdown`` in solo/threads pools). A fixture that fails to set up makes that execution
fail loudly; the next execution tries again. Which process owns which fixtures is the runtime's
business (:meth:`celery_pyncette._runtime.Runtime.fixture_values`); this module only runs them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery_pyncette._asyncio_bridge import run_coroutine

logger = logging.getLogger("celery_pyncette.fixtures")

FixtureGenerator = Generator[Any, None, None] | AsyncGenerator[Any, None]


@dataclass
class ActiveFixtures:
    """Fixture values set up in one process, and the generators to finish in reverse order."""

    values: dict[str, Any] = field(default_factory=dict)
    generators: list[FixtureGenerator] = field(default_factory=list)


def set_up(functions: Mapping[str, Callable[[], Any]]) -> ActiveFixtures:
    """Start every fixture in declaration order; on a failure, finish those started and raise."""
    active = ActiveFixtures()
    try:
        for name, function in functions.items():
            generator = function()
            active.values[name] = _advance(generator)
            active.generators.append(generator)
    except BaseException:
        tear_down(active)
        raise
    return active


def tear_down(active: ActiveFixtures) -> None:
    """Finish the fixtures' generators in reverse order; a failing teardown is logged."""
    for generator in reversed(active.generators):
        try:
            _advance(generator)
        except (StopIteration, StopAsyncIteration):
            continue
        except Exception:
            logger.exception("fixture teardown failed")
        else:
            logger.error("fixture %r yielded more than once; it was not finished", generator)
    active.generators.clear()


def _advance(generator: FixtureGenerator) -> Any:
    if isinstance(generator, AsyncGenerator):
        return run_coroutine(generator.__anext__())
    return next(generator)
