"""A message that reaches a real ``celery worker`` after its expiry (``scheduled_at + expires``):
Celery discards it, and the occurrence is settled as ``"expired"`` (its schedule moves on)
instead of staying locked until its lease runs out. Redis broker, SQLite store."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette
from tests.e2e.conftest import StoreConfig
from tests.e2e.harness import Deployment, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

Deploy = Callable[..., Deployment]


@pytest.fixture
def combination() -> tuple[str, str]:
    return ("redis", "sqlite")


def client(store: StoreConfig) -> Pyncette:
    app = Celery("e2e-client", set_as_current=False)
    app.conf.update(pyncette_url=store.url, pyncette_namespace=store.namespace)
    extension = Pyncette(app)

    @extension.dynamic_task(name="e2e.expiring", expires=2)
    def expiring(context: Context) -> None: ...

    return extension


def test_a_message_received_after_its_expiry_settles_its_occurrence(
    deploy: Deploy, store: StoreConfig
) -> None:
    pyncette = client(store)
    d = deploy([], E2E_LEASE="30")
    pyncette.schedule_task("e2e.expiring", "x", interval=timedelta(seconds=2))
    first = pyncette.get_task_state("e2e.expiring", "x")
    assert first is not None
    d.start_beat()  # no worker yet: the message waits in the queue
    d.must_live = {"beat"}

    def sent() -> bool:
        state = pyncette.get_task_state("e2e.expiring", "x")
        return state is not None and state.locked_until is not None

    wait_until(d, sent, 30, "beat to send the first occurrence")
    d.kill("beat", signal.SIGTERM)
    d.must_live = set()
    expiry = first.scheduled_at + timedelta(seconds=2)
    wait_until(d, lambda: datetime.now(timezone.utc) > expiry, 10, "the message to expire")
    assert pyncette.get_task_state("e2e.expiring", "x").last_status is None  # type: ignore[union-attr]

    d.start_worker()
    d.must_live = {"worker"}

    def settled() -> bool:
        state = pyncette.get_task_state("e2e.expiring", "x")
        return state is not None and state.last_status is not None

    wait_until(d, settled, 40, "the worker to settle the expired message")
    state = pyncette.get_task_state("e2e.expiring", "x")
    assert state is not None
    assert state.last_status == "expired"
    assert state.locked_until is None
    assert state.scheduled_at > first.scheduled_at
    assert d.events() == []  # it never ran
    assert "Discarding revoked task" in d.log("worker")
    pyncette.close()
