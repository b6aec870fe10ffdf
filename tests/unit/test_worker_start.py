"""A starting worker loads its store before the pool starts and opens it in each pool process."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest
from celery import Celery, signals

from celery_pyncette import Pyncette
from celery_pyncette.worker import _receivers as worker_module


class StartingWorker:
    """What ``worker_init`` receivers see of the worker: its app."""

    def __init__(self, app: Celery) -> None:
        self.app = app


def start_pool_process() -> threading.Thread | None:
    """Start a solo pool as a worker does: ``worker_process_init`` (in this, the main process,
    it opens nothing), then ``worker_ready``; the store-opening thread, if any."""
    started = signals.worker_process_init.send(sender="node@host")
    assert next(r for f, r in started if f is worker_module._pool_process_starting) is None
    responses = signals.worker_ready.send(sender=None)
    return next(r for f, r in responses if f is worker_module._worker_ready)


def test_the_main_process_loads_the_store_without_connecting(app: Celery, tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    Pyncette(app, url=f"sqlite:///{database}")
    signals.worker_init.send(sender=StartingWorker(app))
    assert app in worker_module._WORKER_APPS
    assert not database.exists(), "connected before the pool forked"


def test_a_solo_worker_opens_its_store_before_any_task(app: Celery, tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    Pyncette(app, url=f"sqlite:///{database}", namespace="started")
    # Building a solo worker sends worker_init, then worker_process_init as its pool is made;
    # the store opens once the worker is ready (an embedded beat has been forked by then).
    app.WorkController(pool_cls="solo", hostname="solo@host", without_heartbeat=True)
    assert not database.exists(), "opened before an embedded beat could fork"
    signals.worker_ready.send(sender=None)
    for thread in threading.enumerate():
        if thread.name == "celery-pyncette-open-store":
            thread.join(10)

    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "started_instances" in tables


def test_an_app_without_pyncette_opens_nothing(tmp_path: Path) -> None:
    other = Celery("other", broker="memory://", set_as_current=False)
    try:
        signals.worker_init.send(sender=StartingWorker(other))
        assert other not in worker_module._WORKER_APPS
    finally:
        other.close()


def test_a_store_that_cannot_be_opened_is_logged_and_left_to_the_first_task(
    app: Celery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pyncette = Pyncette(app, url=f"sqlite:///{tmp_path}/missing-directory/store.db")
    signals.worker_init.send(sender=StartingWorker(app))
    with caplog.at_level(logging.WARNING, logger="celery_pyncette.worker"):
        thread = start_pool_process()
        assert thread is not None
        thread.join(10)
    assert "could not open the celery-pyncette store at worker start" in caplog.text
    assert "OperationalError" in caplog.text
    assert pyncette.runtime.opened_store is None


def test_invalid_store_settings_are_reported_when_the_worker_starts(
    app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    app.conf.pyncette_url = "nosuchstore://x"
    Pyncette(app)
    with caplog.at_level(logging.ERROR, logger="celery_pyncette.worker"):
        signals.worker_init.send(sender=StartingWorker(app))
    assert "cannot load its store" in caplog.text
    assert "nosuchstore" in caplog.text
