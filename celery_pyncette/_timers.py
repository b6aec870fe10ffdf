"""Simulated time for code that runs inside an execution: the hook a simulation installs.

In production nothing is installed: ``@with_heartbeat`` starts its own thread and nothing else asks.
Under :func:`celery_pyncette.testing.simulate` every execution runs with a :class:`Timers` installed
in its context (:func:`install`), and the code that would wait on the wall clock asks it instead:
``celery_pyncette.testing.sleep`` and the automatic heartbeat of ``@with_heartbeat``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Protocol


class Timers(Protocol):
    """The simulated time of one execution."""

    def sleep(self, seconds: float) -> None:
        """Block this execution for ``seconds`` of simulated time while the rest goes on."""

    def every(self, seconds: float, callback: Callable[[], bool]) -> Callable[[], None]:
        """Call ``callback`` every ``seconds`` of simulated time until it returns False.

        Returns the function that cancels it.
        """


_CURRENT: ContextVar[Timers | None] = ContextVar("celery_pyncette_timers", default=None)


def current() -> Timers | None:
    """The timers of the execution running here, or ``None`` (real time)."""
    return _CURRENT.get()


def install(timers: Timers | None) -> Token[Timers | None]:
    """Make ``timers`` current in this context; :func:`uninstall` takes the token back."""
    return _CURRENT.set(timers)


def uninstall(token: Token[Timers | None]) -> None:
    """Restore what was current before :func:`install`."""
    _CURRENT.reset(token)
