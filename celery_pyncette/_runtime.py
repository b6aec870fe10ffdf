"""The runtime of one Celery app in this process: what beat, dispatch and the worker side use.

A :class:`Runtime` holds the parsed settings, the app's :class:`~celery_pyncette._catalog.Catalog`
(definitions, middlewares, fixture functions), and this process's state: the store connection,
the store clock, the strike view and the fixture values. It is the one owner of that state across
``fork``: the first use in a child process calls the inherited store's ``after_fork()`` (which
drops, never closes, the parent's connections), and starts a fresh clock, strike view and
fixtures (the parent's fixtures are the parent's to tear down).

Each app has at most one runtime (:func:`runtime_for`); ``Pyncette(app)`` creates it, and beat or
a worker that meets an app without one creates it from ``app.conf``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from celery import Celery

from celery_pyncette import _fixtures as fixture_lifecycle
from celery_pyncette._catalog import Catalog
from celery_pyncette._clock import Clock, StoreClock
from celery_pyncette._config import Settings, settings_from
from celery_pyncette._definitions import TaskDefinition
from celery_pyncette._routing import PartitionRouter
from celery_pyncette._strikes import StrikeView
from celery_pyncette.errors import ConfigurationError
from celery_pyncette.stores import store_class, store_from_url
from celery_pyncette.stores.base import Store

_RUNTIMES: weakref.WeakKeyDictionary[Celery, Runtime] = weakref.WeakKeyDictionary()
_RUNTIMES_LOCK = threading.Lock()


def existing_runtime(app: Celery) -> Runtime | None:
    """The runtime of ``app`` if one was created, else ``None`` (never creates one)."""
    with _RUNTIMES_LOCK:
        return _RUNTIMES.get(app)


def runtime_for(app: Celery) -> Runtime:
    """The runtime of ``app``, created from ``app.conf`` when there is none yet."""
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(app)
        if runtime is None:
            runtime = _RUNTIMES[app] = Runtime(app, {})
        return runtime


def register(app: Celery, overrides: dict[str, Any]) -> Runtime:
    """Create the runtime of ``app`` with setting overrides (``Pyncette(app, **settings)``).

    Raises :class:`ConfigurationError` when ``app`` has one already, or an override is invalid.
    """
    runtime = Runtime(app, overrides)
    with _RUNTIMES_LOCK:
        if app in _RUNTIMES:
            raise ConfigurationError(f"Pyncette(app) was already created for {app.main!r}")
        _RUNTIMES[app] = runtime
    return runtime


def runtimes() -> list[Runtime]:
    """Every runtime alive in this process."""
    with _RUNTIMES_LOCK:
        return list(_RUNTIMES.values())


def teardown_fixtures() -> None:
    """Tear down the fixtures this process set up, of every app, latest app first."""
    for runtime in reversed(runtimes()):
        runtime.teardown_fixtures()


class _ProcessState:
    """What belongs to one process: the store, its clock, the strike view, fixture values."""

    def __init__(self, store: Store | None) -> None:
        self.pid = os.getpid()
        self.store = store
        self.clock: Clock | None = None
        self.strike_view: StrikeView | None = None
        self.fixtures: fixture_lifecycle.ActiveFixtures | None = None


class Runtime:
    """Settings, definitions and this process's store, clock, strikes and fixtures of one app."""

    def __init__(self, app: Celery, overrides: dict[str, Any]) -> None:
        self.app = app
        self._overrides = dict(overrides)
        self._settings: Settings | None = settings_from(app.conf, overrides) if overrides else None
        self.catalog = Catalog(app)
        self._lock = threading.RLock()
        self._state = _ProcessState(None)
        self.router = PartitionRouter(lambda: self.store, self.now)

    # --- settings and definitions ----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The parsed settings, read from ``app.conf`` on first use (once the app is configured)."""
        if self._settings is None:
            self._settings = settings_from(self.app.conf, self._overrides)
        return self._settings

    def definition(self, task: Any) -> TaskDefinition:
        """The definition of a task object or name (see :meth:`Catalog.definition`)."""
        return self.catalog.definition(task)

    def definitions(self) -> list[TaskDefinition]:
        """Every definition, narrowed to ``pyncette_enabled_partitions`` (see the catalog)."""
        return self.catalog.definitions(self.settings.enabled_partitions)

    # --- this process's state --------------------------------------------------------------

    def _process(self) -> _ProcessState:
        state = self._state
        if state.pid == os.getpid():
            return state
        with self._lock:
            if self._state.pid != os.getpid():
                inherited = self._state.store
                if inherited is not None:
                    inherited.after_fork()
                self._state = _ProcessState(inherited)
            return self._state

    @property
    def store(self) -> Store:
        """This process's store, set up (connected, tables created) on first use."""
        state = self._process()
        store = state.store
        if store is None:
            with self._lock:
                store = state.store
                if store is None:
                    settings = self.settings
                    store = store_from_url(
                        settings.url,
                        namespace=settings.namespace,
                        skip_table_create=settings.skip_table_create,
                    )
                    store.setup()
                    state.store = store
        return store

    def use_store(self, store: Store) -> None:
        """Use ``store`` (set up by the caller) in this process instead of the configured one."""
        with self._lock:
            self._process().store = store

    @contextlib.contextmanager
    def substituted(self, store: Store, clock: Clock) -> Iterator[None]:
        """Run with ``store`` (set up by the caller) and ``clock`` in place of this process's own.

        For simulations (:mod:`celery_pyncette.testing`): the whole process state (store, clock,
        strike view, fixtures) and the partition router are swapped for fresh ones, and restored
        on exit, after the fixtures set up meanwhile are torn down. The caller closes ``store``.
        """
        with self._lock:
            saved, saved_router = self._process(), self.router
            state = _ProcessState(store)
            state.clock = clock
            self._state = state
            self.router = PartitionRouter(lambda: self.store, self.now)
        try:
            yield
        finally:
            self.teardown_fixtures()
            with self._lock:
                self._state, self.router = saved, saved_router

    def import_store(self) -> None:
        """Import the store's module (for SQL, SQLAlchemy) without connecting.

        Raises :class:`ConfigurationError` for invalid settings or a missing optional dependency.
        """
        store_class(self.settings.url)

    def open_store(self) -> None:
        """Open this process's store now and read its clock, instead of on first use."""
        self.store  # noqa: B018 - sets it up: connects, creates the tables unless skipped
        self.now()

    def now(self) -> datetime:
        """The current time by the store's clock (:class:`~celery_pyncette._clock.StoreClock`)."""
        state = self._process()
        clock = state.clock
        if clock is None:
            clock = state.clock = StoreClock(lambda: self.store)
        return clock.now()

    @property
    def strike_view(self) -> StrikeView:
        """This process's view of the strikes, refreshed within ``poll_interval``."""
        state = self._process()
        view = state.strike_view
        if view is None:
            view = state.strike_view = StrikeView(
                self.store, self.settings.poll_interval, lambda: self.now().timestamp()
            )
        return view

    def fixture_values(self) -> dict[str, Any]:
        """The fixture values of this process, set up on first call (see :mod:`..fixtures`)."""
        functions = self.catalog.fixtures
        if not functions:
            return {}
        state = self._process()
        with self._lock:
            if state.fixtures is None:
                state.fixtures = fixture_lifecycle.set_up(functions)
            return state.fixtures.values

    def teardown_fixtures(self) -> None:
        """Tear down the fixtures this process set up, in reverse order (idempotent)."""
        with self._lock:
            state = self._process()
            active, state.fixtures = state.fixtures, None
        if active is not None:
            fixture_lifecycle.tear_down(active)

    def close(self) -> None:
        """Close this process's store connection (idempotent); a later use opens a new one."""
        with self._lock:
            state = self._process()
            store, state.store = state.store, None
            state.clock = state.strike_view = None
        if store is not None:
            store.close()

    @property
    def opened_store(self) -> Store | None:
        """This process's store if it is open, else ``None`` (never opens one)."""
        return self._process().store
