"""Pyncette 1.1's re-scheduling behaviours (catalogue theme 13), on the simulation kit.

Pyncette keeps the sooner of the old and the new next run whatever the timing; ours keeps the
next run when the timing is unchanged and takes the new timing's first occurrence after now when
it changed (docs/concepts.md, "Re-scheduling"). Both refuse to replace a running instance unless
forced.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_pyncette import Context, TaskLockedError
from celery_pyncette.testing import simulate, sleep
from tests.behaviour._pyncette_like import T0, after, pyncette_like, scheduled, started


def test_replacing_a_running_instance_is_refused() -> None:
    """Pyncette (test_schedule_task_fails_when_locked_without_force): TaskLockedException, and
    1 execution in all."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        sleep(30)

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=2))
        sim.advance(timedelta(seconds=5))
        with pytest.raises(TaskLockedError):
            pyncette.schedule_task(hello, "1", interval=timedelta(seconds=10))
        state = pyncette.get_task_state(hello, "1")
        runs = sim.executions(hello)

    assert state is not None
    assert state.interval == timedelta(seconds=2)
    assert state.locked_until == after(2 + 60)
    assert started(runs) == [2.0]


def test_force_replaces_a_running_instance_and_its_lock() -> None:
    """Pyncette (test_schedule_task_force_overrides_lock): the running execution from +2 and a
    new one at +15 (now + 10 s). Ours the same; the first run's commit finds its lease gone."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        sleep(30)

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=2))
        sim.advance(timedelta(seconds=5))
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=10), force=True)
        sim.advance(timedelta(seconds=15))
        assert started(sim.executions(hello)) == [2.0, 15.0]
        sim.advance(timedelta(seconds=20))
        runs = sim.executions(hello)
        state = pyncette.get_task_state(hello, "1")

    assert scheduled(runs) == [2.0, 15.0]
    assert runs[0].outcome == "success"  # it ran; its commit was refused (the lease was replaced)
    assert state is not None
    assert state.locked_until == after(15 + 60)  # the new run's lease, untouched by the old run


def test_re_scheduling_to_a_later_once_off_time_takes_the_later_time() -> None:
    """Pyncette (..._preserves_sooner_time_when_updating_to_later): +5 then +60: it runs at +5.
    Ours deliberately takes the changed timing: nothing in 10 s, one run at +60."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", execute_at=after(5))
        pyncette.schedule_task(hello, "1", execute_at=after(60))
        sim.advance(timedelta(seconds=10))
        assert sim.executions(hello) == []
        sim.advance(timedelta(seconds=50))
        assert scheduled(sim.executions(hello)) == [60.0]


@pytest.mark.parametrize("force", [False, True])
def test_re_scheduling_to_a_sooner_once_off_time_takes_it(force: bool) -> None:
    """Pyncette (..._updating_to_sooner; ..._force_uses_new_time_not_min): +60 then +5 runs at
    +5; with force, +5 then +60 runs at +60. Ours takes the new time in both, forced or not."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    first, second = (5, 60) if force else (60, 5)
    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", execute_at=after(first))
        pyncette.schedule_task(hello, "1", execute_at=after(second), force=force)
        sim.advance(timedelta(seconds=60))
        assert scheduled(sim.executions(hello)) == [float(second)]


def test_re_scheduling_replaces_the_arguments() -> None:
    """Pyncette (test_schedule_task_updates_spec_while_preserving_schedule): one call, with "bob",
    at the kept sooner time. Ours: "bob" too, at the new timing's time."""
    pyncette = pyncette_like()
    seen: list[str] = []

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        seen.append(context.args["username"])

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", execute_at=after(5), username="alice")
        pyncette.schedule_task(hello, "1", execute_at=after(60), username="bob")
        sim.advance(timedelta(seconds=60))
        runs = sim.executions(hello)

    assert seen == ["bob"]
    assert scheduled(runs) == [60.0]


def test_re_scheduling_with_the_same_timing_keeps_the_next_run_and_replaces_the_arguments() -> None:
    """Ours (the rule Pyncette's sooner-of approximates): the same 10 s interval again at +4 with
    new arguments keeps the run at +10 (not +14) and runs it with the new arguments."""
    pyncette = pyncette_like()
    seen: list[str] = []

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        seen.append(context.args["username"])

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=10), username="alice")
        sim.advance(timedelta(seconds=4))
        state = pyncette.schedule_task(hello, "1", interval=timedelta(seconds=10), username="bob")
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(hello)

    assert state.scheduled_at == after(10)
    assert scheduled(runs) == [10.0]
    assert seen == ["bob"]


def test_re_scheduling_with_a_longer_interval_takes_the_new_interval_from_now() -> None:
    """Pyncette (test_schedule_task_interval_preserves_sooner_schedule): 2 s then 10 s: one run
    in 5 s (at +2, the sooner). Ours: the changed timing from now: none in 5 s, +10, +20."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=2))
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=10))
        sim.advance(timedelta(seconds=5))
        assert sim.executions(hello) == []
        sim.advance(timedelta(seconds=15))
        assert scheduled(sim.executions(hello)) == [10.0, 20.0]


def test_an_instance_name_is_free_again_once_its_once_off_run_removed_it() -> None:
    """Pyncette (test_schedule_task_after_one_time_task_completes): 1 run, then 2 after
    re-scheduling the name with a 3 s interval."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", execute_at=after(2))
        sim.advance(timedelta(seconds=5))
        assert scheduled(sim.executions(hello)) == [2.0]
        assert pyncette.get_task_state(hello, "1") is None
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=3))
        sim.advance(timedelta(seconds=5))
        assert scheduled(sim.executions(hello)) == [2.0, 8.0]
