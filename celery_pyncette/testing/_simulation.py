"""The simulation: real beats and the real worker path on one simulated clock.

Each app's beat is a real :class:`celery_pyncette.beat.Scheduler` whose messages go to an in-process
inbox instead of a broker. Each message is run at once through ``Task.apply`` (Celery's tracer,
then the worker path: the lease is taken, strikes checked, fixtures and middlewares applied, the
outcome settled in the store) on a :class:`~._cooperative.Cooperative` thread. Time moves only in
:meth:`Simulation.advance`, from one event to the next:

* heartbeats of ``@with_heartbeat`` and wake-ups of executions in :func:`sleep`, at their times;
* beat ticks: at the store's earliest ready time of the polled partitions (a due run, an expired
  lease), again at once while beat reports a backlog, and at beat's own cadence (at most a poll
  interval) while something ready was left unclaimed (waiting for a concurrency slot). Ticks that
  could find nothing are skipped, so a simulated year of a daily task is a few hundred events.

At equal times heartbeats come first, then wake-ups (an execution that finishes exactly when its
lease expires commits first), then the tick.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery_pyncette import _timers as timers
from celery_pyncette._clock import utcnow
from celery_pyncette._occurrence import HEADER, Occurrence
from celery_pyncette._publish import OutgoingMessage
from celery_pyncette.beat import Scheduler
from celery_pyncette.stores import store_from_url
from celery_pyncette.stores.base import Store
from celery_pyncette.testing._cooperative import Carriers, Cooperative
from celery_pyncette.worker import PyncetteTaskMixin

if TYPE_CHECKING:
    from celery_pyncette._extension import Pyncette
    from celery_pyncette._runtime import Runtime

logger = logging.getLogger("celery_pyncette.testing")

#: Most events one :meth:`Simulation.advance` handles (a guard against a runaway schedule).
MAX_EVENTS = 1_000_000
#: Most ticks at one simulated instant while beat reports a backlog.
MAX_TICKS_AT_ONCE = 1_000

_HEARTBEAT, _WAKE = 0, 1


class SimulatedClock:
    """The clock every beat, worker path and store call of a simulation reads."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        """The simulated time (aware UTC)."""
        return self.current


@dataclass
class Execution:
    """One execution a simulation ran (or is running).

    ``outcome`` is ``"success"``, ``"failed"`` (``error`` holds the exception), ``"skipped"`` (the
    function did not run: its lease was taken over, or a strike disabled it) or ``"running"``
    (still open, in :func:`sleep`, when the simulation stopped).
    """

    task: str
    instance: str | None
    scheduled_at: datetime | None
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    error: BaseException | None = None


class _Inbox:
    """A beat's publisher in a simulation: messages are kept for the simulation to run."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.messages: list[OutgoingMessage] = []

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[int]:
        self.messages.extend(messages)
        return []

    def close(self) -> None:
        """Nothing to release."""

    def after_fork(self) -> None:
        """Nothing inherited."""


class _Run:
    """One message being executed: its record, its thread, and its simulated timers."""

    def __init__(self, simulation: Simulation, runtime: Runtime, message: OutgoingMessage) -> None:
        self.simulation = simulation
        self.runtime = runtime
        self.message = message
        occurrence = Occurrence.from_header(message.headers.get(HEADER))
        self.record = Execution(
            task=occurrence.task if occurrence else message.task,
            instance=occurrence.instance if occurrence else None,
            scheduled_at=occurrence.scheduled_at if occurrence else None,
            started_at=simulation.now,
        )
        self.started_function = False
        self.thread = Cooperative(
            simulation._carriers, self._execute, f"the execution of {self.record.task}"
        )

    # --- the Timers of this execution (called on its thread, or by the heartbeat) ---------------

    def sleep(self, seconds: float) -> None:
        self.simulation._at(self.simulation.now + _delta(seconds), _WAKE, self.thread.resume)
        self.thread.pause()

    def every(self, seconds: float, callback: Callable[[], bool]) -> Callable[[], None]:
        return self.simulation._every(_delta(seconds), callback)

    # --- on the thread --------------------------------------------------------------------------

    def _execute(self) -> None:
        token = timers.install(self)
        try:
            task = self.runtime.app.tasks[self.message.task]
            result = task.apply(
                args=list(self.message.args),
                kwargs=dict(self.message.kwargs),
                headers=dict(self.message.headers),
                throw=False,
            )
        finally:
            timers.uninstall(token)
        record = self.record
        record.finished_at = self.simulation.now
        if isinstance(task, PyncetteTaskMixin) and not self.started_function:
            record.outcome = "skipped"
        elif result.successful():
            record.outcome = "success"
        else:
            record.outcome = "failed"
            if record.error is None and isinstance(result.result, BaseException):
                record.error = result.result


def _delta(seconds: float) -> timedelta:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
    return timedelta(seconds=seconds)


class Simulation:
    """Beats and the worker path of some apps on one store, under one simulated clock.

    Made by :func:`celery_pyncette.testing.simulate`; see there.
    """

    def __init__(
        self, runtimes: Sequence[Runtime], store: Store, clock: SimulatedClock, beats: int = 1
    ) -> None:
        self._runtimes = list(runtimes)
        self._beats_per_app = beats
        self._store = store
        self._clock = clock
        self._beats: list[tuple[Scheduler, _Inbox]] = []
        self._events: list[tuple[datetime, int, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._runs: list[_Run] = []
        self._current: _Run | None = None
        self._last_tick: datetime | None = None
        self._beat_wake: datetime | None = None
        self._backlog = False
        self._beat_down = False
        self._carriers = Carriers()

    @property
    def now(self) -> datetime:
        """The simulated time (aware UTC)."""
        return self._clock.current

    @property
    def store(self) -> Store:
        """The store the simulation runs on."""
        return self._store

    def executions(self, task: Any = None, instance: str | None = None) -> list[Execution]:
        """The executions so far, in the order they started; optionally of one task (a task
        object or name) and one instance."""
        name = None if task is None else self._task_name(task)
        return [
            run.record
            for run in self._runs
            if (name is None or run.record.task == name)
            and (instance is None or run.record.instance == instance)
        ]

    def advance(self, delta: timedelta, *, beat: bool = True) -> None:
        """Move time forward by ``delta``, running every tick, execution step and heartbeat that
        falls in it, in time order. With ``beat=False`` no beat runs meanwhile (an outage):
        executions already running go on, nothing new is sent."""
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise ValueError(f"advance() takes a non-negative timedelta, got {delta!r}")
        target = self.now + delta
        self._beat_down = not beat
        try:
            self._run_until(target)
        finally:
            self._beat_down = False

    def restart_beats(self) -> None:
        """Replace the beats with new ones, as a deploy or a crash would; the next advance starts
        them (syncing static schedules from code again). Running executions go on."""
        for scheduler, _ in self._beats:
            scheduler.close(keep_store=True)
        self._beats = []
        self._last_tick = self._beat_wake = None
        self._backlog = False

    def _run_until(self, target: datetime) -> None:
        ticks_at_once = 0
        for _ in range(MAX_EVENTS):
            when, action = self._next_event(target)
            if when is None:
                break
            if when == self.now and action is self._tick:
                ticks_at_once += 1
                if ticks_at_once > MAX_TICKS_AT_ONCE:
                    raise RuntimeError(
                        f"beat still reported a backlog after {MAX_TICKS_AT_ONCE} ticks at "
                        f"{self.now.isoformat()}"
                    )
            else:
                ticks_at_once = 0
            self._clock.current = max(self.now, when)
            action()
        else:
            raise RuntimeError(
                f"more than {MAX_EVENTS} events before {target.isoformat()}; advance in shorter "
                "steps, or look for a schedule that fires without end"
            )
        self._clock.current = target

    # --- events ---------------------------------------------------------------------------------

    def _at(self, when: datetime, kind: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, kind, next(self._order), action))

    def _every(self, interval: timedelta, callback: Callable[[], bool]) -> Callable[[], None]:
        if interval <= timedelta(0):
            raise ValueError(f"a heartbeat interval must be positive, got {interval!r}")
        cancelled = False

        def fire() -> None:
            if not cancelled and callback():
                self._at(self.now + interval, _HEARTBEAT, fire)

        def cancel() -> None:
            nonlocal cancelled
            cancelled = True

        self._at(self.now + interval, _HEARTBEAT, fire)
        return cancel

    def _next_event(self, target: datetime) -> tuple[datetime | None, Callable[[], None]]:
        """The next event at or before ``target`` (taken off the queue), else ``(None, ...)``."""
        tick = self._tick_time()
        if self._events and (tick is None or self._events[0][0] <= tick):
            if self._events[0][0] > target:
                return None, self._tick
            when, _, _, action = heapq.heappop(self._events)
            return when, action
        if tick is None or tick > target:
            return None, self._tick
        return tick, self._tick

    def _tick_time(self) -> datetime | None:
        """When beat ticks next (see the module docstring)."""
        now = self.now
        if self._beat_down:
            return None
        if not self._beats:
            self._start_beats()
        if self._last_tick is None or self._backlog:
            return now
        groups = [group for beat, _ in self._beats for group in beat.polled_groups()]
        ready = self._store.earliest_ready(groups) if groups else None
        if ready is None:
            return None
        if ready > self._last_tick:
            return max(ready, now)
        assert self._beat_wake is not None
        return max(self._beat_wake, now)

    def _start_beats(self) -> None:
        for runtime in self._runtimes:
            for _ in range(self._beats_per_app):
                inbox = _Inbox(runtime)
                beat = Scheduler(runtime.app, publisher=inbox, serve_health=False)
                self._beats.append((beat, inbox))

    def _tick(self) -> None:
        now = self.now
        wake = None
        for beat, _ in self._beats:
            delay = beat.tick()
            wake = delay if wake is None else min(wake, delay)
        self._last_tick, self._backlog = now, wake == 0
        self._beat_wake = now + timedelta(seconds=wake or 0)
        for _, inbox in self._beats:
            messages, inbox.messages = inbox.messages, []
            for message in messages:
                self._start(inbox.runtime, message)

    def _start(self, runtime: Runtime, message: OutgoingMessage) -> None:
        run = _Run(self, runtime, message)
        self._runs.append(run)
        run.thread.start()

    # --- set-up and tear-down -------------------------------------------------------------------

    def _mark_started(self, context: Any, call_next: Callable[[], Any]) -> Any:
        """The outermost middleware while simulating: notes that the function is entered (the
        execution was not skipped) and keeps what it raised."""
        run = _current_run()
        if run is not None:
            run.started_function = True
        try:
            return call_next()
        except BaseException as exc:
            if run is not None:
                run.record.error = exc
            raise

    def _close(self) -> None:
        for run in self._runs:
            run.thread.end()
        self._carriers.close()
        for beat, _ in self._beats:
            beat.close(keep_store=True)

    def _task_name(self, task: Any) -> str:
        if isinstance(task, str):
            return task
        for runtime in self._runtimes:
            try:
                return runtime.definition(task).name
            except (KeyError, ValueError):
                continue
        raise ValueError(f"{task!r} is not a task of the simulated apps")


def _current_run() -> _Run | None:
    current = timers.current()
    return current if isinstance(current, _Run) else None


def open_simulation(
    pyncettes: Sequence[Pyncette], start: datetime | None, url: str, beats: int = 1
) -> tuple[Simulation, Callable[[], None]]:
    """Set up a simulation of ``pyncettes`` (apps sharing one store, ``beats`` beats each);
    return it and its closer."""
    if isinstance(beats, bool) or not isinstance(beats, int) or beats < 1:
        raise ValueError(f"beats must be a positive integer, got {beats!r}")
    if start is None:
        start = utcnow()
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise ValueError(f"start must be an aware datetime, got {start!r}")
    runtimes = [p.runtime for p in pyncettes]
    if len({id(r) for r in runtimes}) != len(runtimes):
        raise ValueError("each app may be simulated once")
    settings = runtimes[0].settings
    store = store_from_url(
        url, namespace=settings.namespace, skip_table_create=settings.skip_table_create
    )
    store.setup()
    clock = SimulatedClock(start.astimezone(utcnow().tzinfo))
    simulation = Simulation(runtimes, store, clock, beats)
    substitutions = [runtime.substituted(store, clock) for runtime in runtimes]
    for substitution in substitutions:
        substitution.__enter__()
    for runtime in runtimes:
        runtime.catalog.middlewares.insert(0, simulation._mark_started)

    def close() -> None:
        try:
            simulation._close()
        finally:
            for runtime in runtimes:
                runtime.catalog.middlewares.remove(simulation._mark_started)
            for substitution in reversed(substitutions):
                substitution.__exit__(None, None, None)
            store.close()

    return simulation, close
