"""Running ``async def`` code (tasks, middlewares, fixtures) from Celery's synchronous workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any


def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from synchronous code, inside or outside an event loop.

    Outside a loop it gets a fresh one. Inside one (a sync middleware nested in an async one) it
    runs on a fresh loop in a helper thread, with the caller's context variables, and blocks.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()
