"""``@with_heartbeat()``: keep an at-least-once lease alive for as long as the task runs.

Put it under the schedule decorator::

    @pyncette.task(schedule="0 * * * *", lease_duration=timedelta(seconds=30))
    @with_heartbeat()
    def long_job(context: Context) -> None: ...

A background thread (for ``async def`` functions, an asyncio task) calls
:meth:`Context.heartbeat` every ``lease_duration * lease_remaining_ratio``. When the lease is lost,
``context.lease_lost`` is set and the heartbeat stops; with ``cancel_on_lease_lost=True`` an
``async def`` function is cancelled at its next ``await`` and the run fails with
:class:`~celery_pyncette.errors.LeaseLostError` (a thread cannot be stopped from outside, so a
sync function should check ``context.lease_lost`` at convenient points). Under a simulation
(:mod:`celery_pyncette.testing`) the heartbeats run on its simulated clock instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import numbers
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from celery_pyncette import _events as events
from celery_pyncette import _timers as timers
from celery_pyncette import signals
from celery_pyncette._context import Context
from celery_pyncette.errors import LeaseLostError, StoreError

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("celery_pyncette.heartbeat")


def with_heartbeat(
    lease_remaining_ratio: float = 0.5, cancel_on_lease_lost: bool = False
) -> Callable[[F], F]:
    """Heartbeat in the background while the decorated task function runs.

    A heartbeat is due every ``lease_duration * lease_remaining_ratio`` (as in Pyncette, the ratio
    is the part of the lease elapsed when it is extended): with the default 0.5, halfway through
    each lease. ``lease_remaining_ratio`` must be a real number strictly between 0 and 1
    (``ValueError`` otherwise, ``True`` and ``False`` included).
    """
    given: object = lease_remaining_ratio  # checked at run time: callers pass anything
    if (
        isinstance(given, bool)
        or not isinstance(given, numbers.Real)
        or not 0 < float(given) < 1  # float(): also false for NaN
    ):
        raise ValueError(
            "lease_remaining_ratio must be a number strictly between 0 and 1, "
            f"got {lease_remaining_ratio!r}"
        )
    flag: object = cancel_on_lease_lost
    if not isinstance(flag, bool):
        raise ValueError(
            f"cancel_on_lease_lost must be True or False, got {cancel_on_lease_lost!r}"
        )
    ratio = float(given)

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(context: Context, *args: Any, **kwargs: Any) -> Any:
                main = asyncio.current_task()
                simulated = timers.current()
                if simulated is not None:
                    cancel = main.cancel if cancel_on_lease_lost and main is not None else None
                    loop = asyncio.get_running_loop()
                    stop = _simulated(simulated, context, lease_remaining_ratio, cancel, loop)
                    try:
                        return await _cancellable(function(context, *args, **kwargs), context)
                    finally:
                        stop()
                beating = asyncio.ensure_future(
                    _beat_async(context, ratio, main if cancel_on_lease_lost else None)
                )
                try:
                    return await _cancellable(function(context, *args, **kwargs), context)
                finally:
                    beating.cancel()

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(context: Context, *args: Any, **kwargs: Any) -> Any:
            simulated = timers.current()
            if simulated is not None:
                cancel = _simulated(simulated, context, lease_remaining_ratio, None, None)
                try:
                    return function(context, *args, **kwargs)
                finally:
                    cancel()
            stop = threading.Event()
            beating = threading.Thread(
                target=_beat_thread,
                args=(context, ratio, stop),
                name="pyncette-heartbeat",
                daemon=True,
            )
            beating.start()
            try:
                return function(context, *args, **kwargs)
            finally:
                stop.set()
                beating.join()

        return run  # type: ignore[return-value]

    return decorate


async def _cancellable(run: Coroutine[Any, Any, Any], context: Context) -> Any:
    """Await ``run``; a cancellation after the heartbeat found the lease lost ends it with
    :class:`LeaseLostError`, a failure Celery records (a ``CancelledError`` is no ``Exception``:
    it would escape Celery's tracer, and the pool's worker loop with it)."""
    try:
        return await run
    except asyncio.CancelledError as exc:
        if not context.lease_lost:
            raise
        raise LeaseLostError(f"cancelled: the lease of {context!r} was lost") from exc


def _beat_once(context: Context) -> bool:
    """One heartbeat; False when the heartbeat stops: the lease is lost, or the heartbeat raised
    something other than a :class:`StoreError` (which is retried at the next beat)."""
    try:
        context.heartbeat()
    except LeaseLostError:
        context.lease_lost = True
        logger.warning("lease of %r was lost; the occurrence may run again elsewhere", context)
        if context.occurrence is not None:
            occurrence = context.occurrence
            events.send(
                signals.lease_lost,
                context.task.name,
                occurrence.instance,
                occurrence.partition,
                occurrence.scheduled_at,
            )
        return False
    except StoreError:
        logger.warning("heartbeat of %r failed; retrying", context, exc_info=True)
    except Exception:
        # Not the store being away (a bug, say): retrying would hide it. The run goes on.
        logger.error("heartbeat of %r failed; no more heartbeats", context, exc_info=True)
        return False
    return True


def _simulated(
    simulated: timers.Timers,
    context: Context,
    ratio: float,
    cancel: Callable[[], Any] | None,
    loop: asyncio.AbstractEventLoop | None,
) -> Callable[[], None]:
    """Heartbeat on a simulation's clock; returns the function that stops it."""

    def beat() -> bool:
        alive = _beat_once(context)
        if not alive and cancel is not None and loop is not None:
            loop.call_soon_threadsafe(cancel)
        return alive

    return simulated.every(context.lease_duration.total_seconds() * ratio, beat)


def _beat_thread(context: Context, ratio: float, stop: threading.Event) -> None:
    interval = context.lease_duration.total_seconds() * ratio
    while not stop.wait(interval):
        if not _beat_once(context):
            return


async def _beat_async(context: Context, ratio: float, cancel: asyncio.Task[Any] | None) -> None:
    interval = context.lease_duration.total_seconds() * ratio
    while True:
        await asyncio.sleep(interval)
        if not await asyncio.to_thread(_beat_once, context):
            if cancel is not None:
                cancel.cancel()
            return
