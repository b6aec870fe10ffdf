"""``celery_pyncette.Scheduler``: Celery beat's scheduler, replaced by claims from the store.

``celery -A proj beat -S celery_pyncette.Scheduler`` (or ``-S pyncette``). Any number of beats may
run against one store: each due occurrence is claimed under a lease by exactly one of them.

Beat builds one extra scheduler with ``lazy=True`` only to print its banner: that instance does
no I/O. The store is first contacted on the first tick, so a store that is down at start-up is
retried like one that goes down later; a bad setting still stops beat at once.

With ``pyncette_health_port`` set, the real (not the lazy) scheduler also serves ``GET /healthz``
(:mod:`celery_pyncette._health_server`) from its setup until :meth:`Scheduler.close`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from celery import Celery
from celery.beat import Scheduler as CeleryScheduler

from celery_pyncette import _clock as clock
from celery_pyncette import _registry as registry
from celery_pyncette import metrics
from celery_pyncette._definitions import TaskDefinition
from celery_pyncette._dispatch import Dispatcher, polled_groups, sync_static
from celery_pyncette._health import BeatHealth
from celery_pyncette._health_server import HealthServer
from celery_pyncette._publish import MessageSender
from celery_pyncette._quarantine import GaugeRefresher
from celery_pyncette._runtime import Runtime, runtime_for
from celery_pyncette.errors import ConfigurationError, PyncetteError

logger = logging.getLogger("celery_pyncette.beat")

#: Longest back-off between ticks while the store or broker is failing.
#: Kept short so beat resumes within seconds of the store or broker coming back.
MAX_BACKOFF = 2.0


def redact(url: str) -> str:
    """A store URL with its password hidden, for logs and banners."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


@contextlib.contextmanager
def deferred_shutdown() -> Iterator[Callable[[], bool]]:
    """Hold SIGTERM / SIGINT while a tick claims and publishes; yield "was one received?".

    Celery beat turns SIGTERM into ``SystemExit`` wherever the main thread is. Raised between a
    claim and its publish, that would leave the claimed occurrences locked until their lease
    expires. Deferred, the batch in hand is published, no further batch is claimed, and the
    shutdown proceeds right after. Outside the main thread (beat embedded in a thread) signals
    cannot be handled here and nothing is deferred.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous: dict[int, Any] = {
        sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)
    }

    def remember(signum: int, _frame: Any) -> None:
        received.append(signum)

    for sig in previous:
        signal.signal(sig, remember)
    try:
        yield lambda: bool(received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        logger.info("shutdown requested during a tick; every claimed occurrence was sent")
        handler = previous[received[0]]
        if callable(handler):
            handler(received[0], None)
        else:
            raise SystemExit(0)


def serve_health(health: BeatHealth, host: str, port: int) -> HealthServer:
    """Start ``GET /healthz`` on ``host:port``; a port that cannot be bound stops beat, named."""
    try:
        server = HealthServer(host, port, health.verdict)
    except socket.gaierror as exc:
        raise ConfigurationError(
            f"pyncette_health_host: {host!r} is not an address to listen on ({exc.strerror})"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"pyncette_health_port: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose a free port, or pyncette_health_host another address"
        ) from exc
    bound_host, bound_port = server.address
    logger.info("celery-pyncette: health endpoint on http://%s:%d/healthz", bound_host, bound_port)
    return server


class Scheduler(CeleryScheduler):  # type: ignore[misc]
    """A Celery beat scheduler whose schedule lives in a celery-pyncette store."""

    def __init__(
        self,
        app: Celery,
        *args: Any,
        lazy: bool = False,
        publisher: MessageSender | None = None,
        serve_health: bool = True,
        **kwargs: Any,
    ) -> None:
        self._runtime: Runtime | None = None
        # A simulation (celery_pyncette.testing) gives its own publisher and serves no health.
        self._publisher = publisher
        self._serve_health = serve_health
        self._dispatcher: Dispatcher | None = None
        self._definitions: list[TaskDefinition] = []
        self._synced = False
        self._failures = 0
        self._closed = False
        self._started_at = clock.utcnow()
        self._reported_at: datetime | None = None
        self._pruned_at = self._started_at
        self._quarantine_gauge = GaugeRefresher()
        self._health: BeatHealth | None = None
        self._health_server: HealthServer | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        super().__init__(app, *args, lazy=lazy, **kwargs)
        if not lazy:
            self.max_interval = self.runtime.settings.poll_interval

    @property
    def runtime(self) -> Runtime:
        """The app's runtime (created from ``app.conf`` when the app made no ``Pyncette``)."""
        if self._runtime is None:
            self._runtime = runtime_for(self.app)
        return self._runtime

    def setup_schedule(self) -> None:
        """Validate settings and definitions; no store I/O yet (see the module docstring)."""
        self.data: dict[str, Any] = {}
        runtime = self.runtime
        settings = runtime.settings
        self._definitions = runtime.definitions()
        self._dispatcher = Dispatcher(runtime, self.owner, self._publisher)
        self._health = BeatHealth(
            self.owner, lambda: runtime.store, runtime.now, settings.poll_interval
        )
        if self._serve_health and settings.health_port is not None and self._health_server is None:
            self._health_server = serve_health(
                self._health, settings.health_host, settings.health_port
            )
        logger.info(
            "celery-pyncette: store %s, %d task(s), poll interval %ss, beat %s",
            redact(settings.url),
            len(self._definitions),
            settings.poll_interval,
            self.owner,
        )

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Send what is due; return how long to sleep. Never raises (beat would die)."""
        try:
            delay = self._tick()
        except ConfigurationError:
            raise  # a misconfiguration found in the store (a changed partition_count) stops beat
        except Exception as exc:
            if self._health is not None:
                self._health.tick_failed(exc)
            self._failures += 1
            backoff: float = self.runtime.settings.poll_interval * 2 ** min(self._failures, 6)
            delay = min(backoff, MAX_BACKOFF)
            if self._failures == 1:
                logger.exception("beat tick failed; retrying in %.1fs", delay)
            elif self._failures & (self._failures - 1) == 0:  # 2, 4, 8, ...: no log storm
                logger.warning(
                    "beat tick failed again (%d in a row: %s: %s); retrying every %.1fs",
                    self._failures,
                    type(exc).__name__,
                    exc,
                    delay,
                )
            return delay
        if self._health is not None:
            self._health.tick_succeeded()
        return delay

    def _tick(self) -> float:
        assert self._dispatcher is not None, "setup_schedule() was not called"
        runtime = self.runtime
        tick_started = runtime.now()
        if not self._synced:
            for definition in self._definitions:
                if definition.dynamic:
                    runtime.router.layout(definition)  # refuses a changed partition count
            sync_static(runtime, self._definitions, runtime.now())
            self._synced = True
        started = time.monotonic()
        with deferred_shutdown() as stop_requested:
            self._dispatcher.stopping = stop_requested
            backlog = self._dispatcher.dispatch(runtime.router.polled(self._definitions))
        metrics.observe_tick(time.monotonic() - started)
        self._report()
        self._quarantine_gauge.refresh(runtime.store, runtime.now())
        if self._failures:
            logger.info("beat recovered after %d failed tick(s)", self._failures)
            self._failures = 0
        if backlog:
            return 0.0
        return self._sleep(tick_started)

    def polled_groups(self) -> list[tuple[str, int]]:
        """The ``(task, partition)`` groups this beat's ticks claim from."""
        return polled_groups(self.runtime.router.polled(self._definitions))

    def _report(self) -> None:
        """Refresh this beat's record in the store (for ``celery pyncette status``), throttled."""
        now = self.runtime.now()
        if self._reported_at is not None and now - self._reported_at < registry.REPORT_EVERY:
            return
        registry.record_beat(
            self.runtime.store,
            self.owner,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            partitions={d.name: list(d.polled_partitions) for d in self._definitions if d.enabled},
            now=now,
        )
        if self._reported_at is None or now - self._pruned_at > registry.FORGET_AFTER / 6:
            registry.forget_dead_beats(self.runtime.store, now)
            self._pruned_at = now
        self._reported_at = now

    def _sleep(self, tick_started: datetime) -> float:
        """Until the next known due time of a static task, at most until ``poll_interval`` after
        this tick started: ticks start every poll interval (not a poll interval after the last
        one ended), so a dynamic occurrence waits at most one poll interval for its tick."""
        poll = self.runtime.settings.poll_interval
        now = self.runtime.now()
        wake = poll - (now - tick_started).total_seconds()
        for definition in self._definitions:
            if definition.dynamic or definition.schedule is None or not definition.enabled:
                continue
            due = definition.schedule.send_after(now)
            if due is not None:
                wake = min(wake, (due - now).total_seconds())
        return max(0.0, wake)

    def close(self, *, keep_store: bool = False) -> None:
        """Release the store connection (unless ``keep_store``: a simulation's store outlives its
        beats); safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._health_server is not None:
            self._health_server.close()
        try:
            if self._reported_at is not None and self._runtime is not None:
                registry.forget_beat(self._runtime.store, self.owner)
        except PyncetteError:
            logger.warning("could not remove this beat's record from the store", exc_info=True)
        if self._dispatcher is not None:
            self._dispatcher.queue_wait.close()
            self._dispatcher.publisher.close()
        try:
            super().close()
        finally:
            if self._runtime is not None and not keep_store:
                try:
                    self._runtime.close()
                except PyncetteError:
                    logger.warning("closing the store failed", exc_info=True)

    def should_sync(self) -> bool:
        """Nothing to sync: every change is written to the store when it happens."""
        return False

    @property
    def info(self) -> str:
        """Banner text; no I/O (beat builds a lazy scheduler just for this)."""
        try:
            settings = self.runtime.settings
        except PyncetteError as exc:
            return f"    . pyncette -> misconfigured: {exc}"
        return f"    . pyncette store -> {redact(settings.url)}"
