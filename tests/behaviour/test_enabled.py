"""Theme 4, ``enabled=False``: Pyncette's ``test_disabled_task``, ``test_disabled_dynamic_task``
and ``test_disabled_partitioned_task``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette.testing import simulate
from tests.behaviour import T0, sched

#: A template decorator (``dynamic_task(...)``, ``partitioned_task(...)``).
Template = Callable[[Callable[..., Any]], Any]


def test_disabled_task(pyncette: Pyncette) -> None:
    """Pyncette: of two static 2 s tasks, the one with ``enabled=False`` never runs; 5 runs in
    10 s in all, all of the enabled one."""

    @pyncette.task(interval=timedelta(seconds=2), enabled=True)
    def on(context: Context) -> None: ...

    @pyncette.task(interval=timedelta(seconds=2), enabled=False)
    def off(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        assert sched(sim.executions(on)) == [2, 4, 6, 8, 10]
        assert sim.executions(off) == []
        assert len(sim.executions()) == 5


def _dynamic(pyncette: Pyncette, enabled: bool) -> Template:
    return pyncette.dynamic_task(enabled=enabled)


def _partitioned(pyncette: Pyncette, enabled: bool) -> Template:
    return pyncette.partitioned_task(partition_count=1, enabled=enabled)


@pytest.mark.parametrize(
    "template",
    [_dynamic, _partitioned],
    ids=["test_disabled_dynamic_task", "test_disabled_partitioned_task"],
)
def test_disabled_template(
    pyncette: Pyncette, template: Callable[[Pyncette, bool], Template]
) -> None:
    """Pyncette: instance "1" (every 2 s) of an enabled and of a disabled dynamic (or
    partitioned, one partition) task: 5 runs in 10 s, all of the enabled one; none after both
    are unscheduled. The disabled one's instance is stored, just never run."""

    @template(pyncette, True)
    def on(context: Context) -> None: ...

    @template(pyncette, False)
    def off(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        for task in (on, off):
            pyncette.schedule_task(task, "1", interval=timedelta(seconds=2))
        sim.advance(timedelta(seconds=10))
        assert sched(sim.executions(on, "1")) == [2, 4, 6, 8, 10]
        assert sim.executions(off) == []
        stored = pyncette.get_task_state(off, "1")
        assert stored is not None
        assert stored.scheduled_at == T0 + timedelta(seconds=2)

        assert pyncette.unschedule_task(on, "1")
        assert pyncette.unschedule_task(off, "1")
        sim.advance(timedelta(seconds=10))
        assert len(sim.executions()) == 5
