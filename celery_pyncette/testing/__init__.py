"""Test schedules in milliseconds: the real beat and worker path under a simulated clock.

::

    from celery_pyncette.testing import simulate, sleep

    with simulate(pyncette, start=datetime(2026, 10, 31, 12, tzinfo=timezone.utc)) as sim:
        pyncette.schedule_task(remind, "u1", schedule="30 1 * * *", timezone="America/New_York")
        sim.advance(timedelta(days=3))
        runs = sim.executions(remind, "u1")

:func:`simulate` swaps the apps' store for a fresh one (``memory://`` unless ``url`` says
otherwise) and their clock for a simulated one, runs real beats whose messages are executed
in-process through Celery's ``Task.apply`` (no broker, no worker process, no real sleeping), and
restores everything on exit. Inside a task, :func:`sleep` keeps the execution open for simulated
time while beat goes on. The pytest plugin (installed with the package) offers the same as the
``pyncette_simulation`` fixture. See docs/testing.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from celery_pyncette import _timers as timers
from celery_pyncette.testing._simulation import Execution, Simulation, open_simulation

if TYPE_CHECKING:
    from celery_pyncette._extension import Pyncette

__all__ = ["Execution", "Simulation", "simulate", "sleep"]


@contextlib.contextmanager
def simulate(
    pyncette: Pyncette,
    *others: Pyncette,
    start: datetime | None = None,
    url: str = "memory://",
    beats: int = 1,
) -> Iterator[Simulation]:
    """Simulate ``pyncette``'s beat and workers (and those of ``others``, apps sharing the store)
    from ``start`` (aware; default now) on a fresh store at ``url``, with ``beats`` beats per app
    (they claim from the same partitions, as several beat processes do).

    Declared tasks, middlewares and fixtures are the apps' own; schedule instances inside the
    block. Time stands still until :meth:`Simulation.advance`. Fixtures set up during the block
    are torn down on exit; an execution still sleeping then is abandoned (``outcome
    "running"``). Raises ``ValueError`` for a naive ``start``, an app given twice, or ``beats``
    not a positive integer.
    """
    simulation, close = open_simulation([pyncette, *others], start, url, beats)
    try:
        yield simulation
    finally:
        close()


def sleep(seconds: float) -> None:
    """Keep the calling execution open for ``seconds`` of simulated time.

    Beat keeps ticking and other executions run meanwhile, so a lease that expires during it is
    claimed and sent again, and ``@with_heartbeat`` beats. Only inside an execution run by a
    simulation: elsewhere raises ``RuntimeError``.
    """
    current = timers.current()
    if current is None:
        raise RuntimeError("celery_pyncette.testing.sleep() works only in a simulated execution")
    current.sleep(seconds)
