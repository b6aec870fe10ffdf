"""``Pyncette(app)``: the public face of celery-pyncette for one Celery app.

A thin facade over the app's runtime (:mod:`celery_pyncette._runtime`: settings, definitions, this
process's store, clock and strikes). The decorators live in :mod:`celery_pyncette._declare`, the
dynamic-instance API with its async twins in :mod:`celery_pyncette._instances`, run now and
backfill in :mod:`celery_pyncette._run_now`, strikes' rules in :mod:`celery_pyncette._strikes`.
Beat and the worker side use the runtime, never this class.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Celery

from celery_pyncette import _runtime
from celery_pyncette._config import Settings
from celery_pyncette._declare import DeclarationAPI
from celery_pyncette._definitions import TaskDefinition, default_partition_selector
from celery_pyncette._instances import InstanceAPI
from celery_pyncette._routing import PartitionRouter
from celery_pyncette._run_now import ExtraRunsAPI
from celery_pyncette._strikes import StrikeView, make_strike
from celery_pyncette.stores.base import Store, Strike

__all__ = ["Pyncette", "default_partition_selector", "existing_extension", "extension_for"]

#: id(runtime) -> its facade, while someone holds the facade (a facade holds its runtime, so the
#: id cannot be reused meanwhile); a new facade over the same runtime behaves the same.
_FACADES: weakref.WeakValueDictionary[int, Pyncette] = weakref.WeakValueDictionary()


def existing_extension(app: Celery) -> Pyncette | None:
    """The :class:`Pyncette` of ``app`` if one was created, else ``None`` (never creates one)."""
    runtime = _runtime.existing_runtime(app)
    return None if runtime is None else _FACADES.get(id(runtime))


def extension_for(app: Celery) -> Pyncette:
    """The :class:`Pyncette` of ``app``, created with the app's settings if there is none yet."""
    existing = existing_extension(app)
    if existing is not None:
        return existing
    return Pyncette._over(_runtime.runtime_for(app))


class Pyncette(DeclarationAPI, InstanceAPI, ExtraRunsAPI):
    """The celery-pyncette extension of one Celery app.

    ``Pyncette(app, url=..., batch_size=...)``: keywords override the ``pyncette_*`` settings of
    ``app.conf``; an unknown or malformed one raises :class:`ConfigurationError`, and so does a
    second ``Pyncette`` for the same app.
    """

    def __init__(self, app: Celery, **settings: Any) -> None:
        self._bind(_runtime.register(app, settings))

    @classmethod
    def _over(cls, runtime: _runtime.Runtime) -> Pyncette:
        facade = cls.__new__(cls)
        facade._bind(runtime)
        return facade

    def _bind(self, runtime: _runtime.Runtime) -> None:
        self._runtime = runtime
        self.app = runtime.app
        _FACADES.setdefault(id(runtime), self)

    @property
    def runtime(self) -> _runtime.Runtime:
        """The app's runtime, as beat and the worker side see it."""
        return self._runtime

    # --- settings and store -----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The parsed settings, read from ``app.conf`` on first use (once the app is configured)."""
        return self._runtime.settings

    @property
    def store(self) -> Store:
        """This process's store, set up on first use (a forked child gets its own connections)."""
        return self._runtime.store

    @property
    def router(self) -> PartitionRouter:
        """Routes instances of partitioned tasks by the stored partition count."""
        return self._runtime.router

    @property
    def strike_view(self) -> StrikeView:
        """This process's view of the strikes, refreshed within ``poll_interval``."""
        return self._runtime.strike_view

    def import_store(self) -> None:
        """Import the store's module without connecting (``ConfigurationError`` if it cannot)."""
        self._runtime.import_store()

    def open_store(self) -> None:
        """Open this process's store now and read its clock, instead of on first use."""
        self._runtime.open_store()

    def now(self) -> datetime:
        """The current time by the store's clock (:class:`~celery_pyncette._clock.StoreClock`)."""
        return self._runtime.now()

    def close(self) -> None:
        """Close this process's store connection (idempotent)."""
        self._runtime.close()

    # --- the catalog ---------------------------------------------------------------------------

    @property
    def middlewares(self) -> list[Callable[..., Any]]:
        """The middlewares, in declaration order."""
        return self._runtime.catalog.middlewares

    @property
    def fixtures(self) -> dict[str, Callable[..., Any]]:
        """The fixture functions by name."""
        return self._runtime.catalog.fixtures

    def definition(self, task: Any) -> TaskDefinition:
        """The definition of a task object or name; ``ValueError`` lists the candidates."""
        return self._runtime.definition(task)

    def definitions(self) -> list[TaskDefinition]:
        """Every definition: declared tasks and ``beat_schedule`` entries (see the catalog)."""
        return self._runtime.definitions()

    def beat_schedule_definitions(self) -> dict[str, TaskDefinition]:
        """``app.conf.beat_schedule`` entries as static at-least-once definitions, by entry name."""
        return self._runtime.catalog.beat_schedule_definitions()

    def function(self, celery_task: Any) -> Callable[..., Any] | None:
        """The user function behind a task this extension declared."""
        return self._runtime.catalog.function(celery_task)

    # --- strikes --------------------------------------------------------------------------------

    def _strike(
        self,
        task: Any,
        parameter: str | None,
        operator: str | None,
        value: Any,
        reason: str | None = None,
    ) -> Strike:
        name = None if task is None else self.definition(task).name
        return make_strike(name, parameter, operator, value, reason)

    def strike(
        self,
        task: Any,
        parameter: str | None = None,
        operator: str | None = None,
        value: Any = None,
        *,
        reason: str | None = None,
    ) -> Strike:
        """Disable every occurrence of ``task`` (``None``: any task) whose argument matches.

        ``reason`` (``"incident 4711"``) is stored with the strike and shown by every listing;
        striking the same rule again replaces it. ``ValueError`` for a reason that is not one
        line of at most 500 characters, or an invalid rule; nothing is written then.
        """
        struck = self._strike(task, parameter, operator, value, reason)
        self.store.add_strike(struck)
        return struck

    def restore(
        self,
        task: Any,
        parameter: str | None = None,
        operator: str | None = None,
        value: Any = None,
    ) -> bool:
        """Remove a strike; return whether it existed."""
        return self.store.remove_strike(self._strike(task, parameter, operator, value))

    def strikes(self) -> list[Strike]:
        """Every strike in the store."""
        return self.store.list_strikes()
