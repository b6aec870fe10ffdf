"""Shared fixtures: a driven clock and a Celery app wired to celery-pyncette on a memory store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from celery import Celery

from celery_pyncette import Pyncette
from celery_pyncette import _clock as clock


class FakeClock:
    """A clock the test moves by hand; installed as ``celery_pyncette._clock.utcnow``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    driven = FakeClock(datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc))
    monkeypatch.setattr(clock, "utcnow", driven)
    return driven


@pytest.fixture
def app() -> Iterator[Celery]:
    celery_app = Celery("unit", broker="memory://", set_as_current=False)
    # kombu's memory transport is process-wide: a queue per test keeps tests apart.
    celery_app.conf.update(task_default_queue=f"unit-{uuid.uuid4().hex[:8]}")
    yield celery_app
    celery_app.close()


@pytest.fixture
def pyncette(app: Celery) -> Iterator[Pyncette]:
    extension = Pyncette(app, url="memory://", poll_interval=0.5, lease_duration=30)
    yield extension
    extension.close()
