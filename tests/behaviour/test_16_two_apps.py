"""Pyncette 1.1's coordination behaviours (catalogue theme 16), on the simulation kit."""

from __future__ import annotations

from datetime import timedelta

from celery_pyncette import Context
from celery_pyncette.testing import simulate
from tests.behaviour._pyncette_like import T0, pyncette_like, scheduled


def test_two_schedulers_on_one_store_run_each_occurrence_once() -> None:
    """Pyncette (test_coordination): two apps, the same 2 s task, 10 s: 5 executions in all.
    Ours: two processes declaring the same task share the store; each occurrence is claimed by
    one beat only."""
    first, second = pyncette_like(), pyncette_like()
    for pyncette in (first, second):

        @pyncette.task(interval=timedelta(seconds=2), name="coordination.hello")
        def hello(context: Context) -> None: ...

    with simulate(first, second, start=T0, beats=2) as sim:
        sim.advance(timedelta(seconds=10))
        runs = sim.executions("coordination.hello")

    assert scheduled(runs) == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_an_instance_scheduled_by_one_app_is_unscheduled_by_another() -> None:
    """Pyncette (test_dynamic_coordination): scheduled through app 1, run 10 s, unscheduled
    through app 2, 10 s more: 5 executions."""
    first, second = pyncette_like(), pyncette_like()
    templates = []
    for pyncette in (first, second):

        @pyncette.dynamic_task(name="coordination.dynamic")
        def hello(context: Context) -> None: ...

        templates.append(hello)

    with simulate(first, second, start=T0) as sim:
        first.schedule_task(templates[0], "1", interval=timedelta(seconds=2))
        sim.advance(timedelta(seconds=10))
        assert second.unschedule_task(templates[1], "1") is True
        sim.advance(timedelta(seconds=10))
        runs = sim.executions("coordination.dynamic")

    assert scheduled(runs) == [2.0, 4.0, 6.0, 8.0, 10.0]
