"""Pyncette 1.1's partition behaviours (catalogue theme 15), on the simulation kit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_pyncette import Context
from celery_pyncette._extension import default_partition_selector
from celery_pyncette.testing import simulate
from tests.behaviour._pyncette_like import T0, pyncette_like, scheduled

#: Pyncette's own instance names, which its selector puts in partitions 0, 1, 2, 3 and 4 of 5.
NAMES = [
    "festive_raman",
    "sad_germain",
    "determined_nash",
    "compassionate_chandrasekhar",
    "suspicious_matsumoto",
]


@pytest.mark.parametrize(("enabled", "running"), [(None, NAMES), ([0, 1], NAMES[:2])])
def test_partitioned_instances_run_like_dynamic_ones_where_their_partition_is_polled(
    enabled: list[int] | None, running: list[str]
) -> None:
    """Pyncette (test_partitioned_successful_task_interval[_selective]): 5 partitions, five 2 s
    instances, 10 s: 25 executions; with enabled_partitions=[0, 1], 10 (the first two names)."""
    pyncette = pyncette_like()

    @pyncette.partitioned_task(partition_count=5, enabled_partitions=enabled)
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        for name in NAMES:
            pyncette.schedule_task(hello, name, interval=timedelta(seconds=2))
        states = {name: pyncette.get_task_state(hello, name) for name in NAMES}
        sim.advance(timedelta(seconds=10))
        for name in NAMES:
            pyncette.unschedule_task(hello, name)
        sim.advance(timedelta(seconds=10))
        runs = {name: scheduled(sim.executions(hello, name)) for name in NAMES}

    assert {name: s.partition for name, s in states.items() if s is not None} == {
        name: index for index, name in enumerate(NAMES)
    }
    assert runs == {n: [2.0, 4.0, 6.0, 8.0, 10.0] if n in running else [] for n in NAMES}


def test_a_partition_count_below_one_is_refused() -> None:
    """Pyncette (test_partition_count_invalid): ValueError."""
    pyncette = pyncette_like()
    with pytest.raises(ValueError, match="partition_count"):
        pyncette.partitioned_task(partition_count=0)


def test_the_default_partition_selector_does_not_change() -> None:
    """Pyncette (test_default_partition_selector_does_not_change): its regression value."""
    assert default_partition_selector(10**12, "Lorem ipsum dolor sit amet") == 222413034928
