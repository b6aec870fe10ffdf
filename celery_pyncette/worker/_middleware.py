"""The middleware chain around a task function: ``(context, call_next)``, sync or async."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from celery_pyncette._asyncio_bridge import run_coroutine
from celery_pyncette._context import Context


def _resolve(value: Any) -> Any:
    return run_coroutine(value) if inspect.iscoroutine(value) else value


def run_chain(
    middlewares: list[Callable[..., Any]], context: Context, function: Callable[[Context], Any]
) -> Any:
    """Call ``function(context)`` inside the middlewares, the first declared outermost.

    Each middleware gets ``(context, call_next)``; sync and ``async def`` middlewares and functions
    mix freely. An exception propagates out like the function's own unless a middleware handles it.
    """

    def call(index: int) -> Any:
        if index == len(middlewares):
            return _resolve(function(context))
        middleware = middlewares[index]
        if inspect.iscoroutinefunction(middleware):

            async def call_next() -> Any:
                return call(index + 1)

            return run_coroutine(middleware(context, call_next))
        return _resolve(middleware(context, lambda: call(index + 1)))

    return call(0)
