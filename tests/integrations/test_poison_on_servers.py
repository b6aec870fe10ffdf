"""The issue's poison batch on the server stores (PostgreSQL, MariaDB, Redis, Redis Cluster,
DynamoDB): batch_size 5, five
records of an unknown kind due before three healthy ones, ten beat ticks. The three go out in the
first tick, each bad record is logged once, no tick reports a backlog. Times come from the
extension's clock (the server's), moved by the driven local clock."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette
from celery_pyncette.beat import Scheduler
from celery_pyncette.stores.base import InstanceKey, InstanceRecord
from tests.backends import dynamodb, mariadb, postgres, redis_cluster
from tests.backends import redis as standalone
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]


BACKENDS = [postgres, mariadb, standalone, redis_cluster, dynamodb]


@pytest.fixture(params=BACKENDS, ids=[str(b.NAME) for b in BACKENDS])
def extension(request: pytest.FixtureRequest, app: Celery) -> Iterator[Pyncette]:
    backend: ModuleType = request.param
    namespace = f"q{uuid.uuid4().hex[:10]}"
    # creates the tables or keys (and removes them after); the extension opens its own client
    with backend.make_store(namespace) as store:
        pyncette = Pyncette(
            app, url=store.url, namespace=namespace, batch_size=5, poll_interval=1.0
        )
        try:
            yield pyncette
        finally:
            pyncette.close()


def test_a_poison_batch_neither_spins_beat_nor_holds_up_the_healthy_records(
    fake_clock: FakeClock, app: Celery, extension: Pyncette, caplog: pytest.LogCaptureFixture
) -> None:
    @extension.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    for name in ("good1", "good2", "good3"):
        extension.schedule_task(hello, name, interval=timedelta(seconds=1))
    now = extension.now()
    bad = [f"bad{i}" for i in range(5)]
    for name in bad:
        key = InstanceKey("hello", 0, name)
        extension.store.upsert(InstanceRecord(key, now, {"kind": "nonsense"}, {}), now)
    fake_clock.advance(seconds=1)
    scheduler = Scheduler(app)
    try:
        with caplog.at_level(logging.WARNING, "celery_pyncette"):
            delays, ticks = [], []
            for _ in range(10):
                delays.append(scheduler.tick())
                ticks.append(sorted(m.headers["pyncette"]["instance"] for m in take_waiting(app)))
        quarantined = extension.store.list_quarantined("hello")
    finally:
        scheduler.close()

    assert ticks[0] == ["good1", "good2", "good3"]
    assert ticks[1:] == [[]] * 9
    assert all(delay > 0 for delay in delays), delays
    assert sorted(q.key.instance for q in quarantined) == bad
    for name in bad:
        logged = [r for r in caplog.records if repr(name) in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in logged]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
