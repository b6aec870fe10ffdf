"""Fixtures of the Pyncette ports: a fresh Celery app per test, wired like Pyncette's defaults."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Pyncette, signals

_names = itertools.count()

#: Builds a ``Pyncette`` on its own Celery app; keywords are settings (``poll_interval=30``).
MakePyncette = Callable[..., Pyncette]


@pytest.fixture
def make_pyncette() -> Iterator[MakePyncette]:
    """A factory of apps on ``memory://`` polling every second (Pyncette's default), each on its
    own Celery app; every app made is closed after the test."""
    made: list[tuple[Celery, Pyncette]] = []

    def make(**settings: Any) -> Pyncette:
        app = Celery(f"behaviour-{next(_names)}", set_as_current=False)
        options: dict[str, Any] = {"url": "memory://", "poll_interval": 1.0, **settings}
        extension = Pyncette(app, **options)
        made.append((app, extension))
        return extension

    yield make
    for app, extension in reversed(made):
        extension.close()
        app.close()


@pytest.fixture
def pyncette(make_pyncette: MakePyncette) -> Pyncette:
    """An app with Pyncette's defaults: poll every second, leases of 60 s."""
    return make_pyncette()


@pytest.fixture
def lost_leases() -> Iterator[list[tuple[str, str | None, Any]]]:
    """Each ``lease_lost`` signal sent during the test: ``(task, instance, scheduled_at)``."""
    sent: list[tuple[str, str | None, Any]] = []

    def receive(sender: Any = None, **fields: Any) -> None:
        sent.append((fields["task"], fields["instance"], fields["scheduled_at"]))

    signals.lease_lost.connect(receive, weak=False)
    yield sent
    signals.lease_lost.disconnect(receive)
