"""Executions as cooperative threads: one runs at a time and hands control back when it sleeps.

The simulation (the controller) starts or resumes a :class:`Cooperative` and blocks until it
sleeps (:meth:`Cooperative.pause`, called on its thread) or returns. Only one thread runs at any
moment, so a simulation is deterministic, yet an execution that sleeps stays open while beat ticks
and other executions run: they overlap as on a fleet of workers. Threads are kept in a
:class:`Carriers` pool and reused (starting a thread costs far more than handing one a job).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: Longest real time a thread may run before it sleeps or returns (a guard against a task blocked
#: on something outside the simulation, which would otherwise hang the test).
STEP_TIMEOUT = 60.0


class SimulationEnded(BaseException):
    """Raised in an execution still sleeping when its simulation ends, to unwind its thread."""


class _Carrier:
    """A reusable thread that runs one :class:`Cooperative` at a time."""

    def __init__(self, pool: Carriers) -> None:
        self.pool = pool
        self.job: Cooperative | None = None
        self.go = threading.Semaphore(0)
        self.back = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._loop, name="pyncette-simulated", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            job = self.job
            if job is None:
                return
            job.run_here()
            self.job = None
            self.pool.idle.append(self)
            self.back.release()

    def stop(self) -> None:
        self.job = None
        self.go.release()
        self.thread.join(STEP_TIMEOUT)


class Carriers:
    """The threads of one simulation; :meth:`close` ends the idle ones."""

    def __init__(self) -> None:
        self.idle: list[_Carrier] = []

    def take(self) -> _Carrier:
        return self.idle.pop() if self.idle else _Carrier(self)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().stop()


class Cooperative:
    """``target`` run one step at a time by the controller, on a carrier thread."""

    def __init__(self, pool: Carriers, target: Callable[[], None], name: str) -> None:
        self._pool = pool
        self._target = target
        self.name = name
        self._carrier: _Carrier | None = None
        self._ended = False
        self._error: BaseException | None = None
        self.finished = False

    def start(self) -> None:
        """Run until it first sleeps or returns (controller side)."""
        self._carrier = carrier = self._pool.take()
        carrier.job = self
        carrier.go.release()
        self._wait(carrier)

    def resume(self) -> None:
        """Run the sleeping job until it sleeps again or returns (controller side)."""
        carrier = self._carrier
        assert carrier is not None
        assert not self.finished
        carrier.go.release()
        self._wait(carrier)

    def end(self) -> None:
        """Unwind a sleeping job: its :meth:`pause` raises :class:`SimulationEnded`."""
        carrier = self._carrier
        if self.finished or carrier is None:
            return
        self._ended = True
        carrier.go.release()
        carrier.back.acquire(timeout=STEP_TIMEOUT)

    def pause(self) -> None:
        """Hand control back to the controller until it resumes this job (carrier side)."""
        carrier = self._carrier
        assert carrier is not None
        carrier.back.release()
        carrier.go.acquire()
        if self._ended:
            raise SimulationEnded

    def run_here(self) -> None:
        """Run the target on the calling carrier thread."""
        try:
            self._target()
        except SimulationEnded:
            pass
        except BaseException as exc:  # the simulation's own failure: re-raised in the controller
            self._error = exc
        finally:
            self.finished = True

    def _wait(self, carrier: _Carrier) -> None:
        if not carrier.back.acquire(timeout=STEP_TIMEOUT):
            raise RuntimeError(
                f"{self.name} neither returned nor slept within {STEP_TIMEOUT:.0f}s of real "
                "time; is it blocked on something outside the simulation?"
            )
        error, self._error = self._error, None
        if error is not None:
            raise error
