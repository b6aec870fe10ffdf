"""Catalogue theme 18: Pyncette's executor limits app-level concurrency; ours leaves that to
Celery's workers. Its nearest feature, a per-task ``concurrency_limit`` kept in the store, is
ported in place of Pyncette's test_concurrency_limit."""

from __future__ import annotations

import itertools
from datetime import timedelta

from celery_pyncette import Context
from celery_pyncette.testing import simulate, sleep
from tests.behaviour._pyncette_like import T0, after, pyncette_like, started


def test_a_concurrency_limit_of_one_runs_due_instances_one_after_the_other() -> None:
    """Pyncette (test_concurrency_limit): with an app-wide limit of 1, one execution at a time.
    Ours: with concurrency_limit=1 on the task, three once-off instances due at +1 s that each
    take 5 s start one after another (each on the first tick after the previous one ended)."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task(concurrency_limit=1)
    def hello(context: Context) -> None:
        sleep(5)

    with simulate(pyncette, start=T0) as sim:
        for n in range(3):
            pyncette.schedule_task(hello, f"i{n}", execute_at=after(1))
        sim.advance(timedelta(seconds=20))
        runs = sorted(sim.executions(hello), key=lambda r: r.started_at)

    assert started(runs) == [1.0, 6.0, 11.0]
    assert all(r.outcome == "success" for r in runs)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None
        assert earlier.finished_at <= later.started_at
