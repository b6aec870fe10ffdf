"""Pyncette 1.1's dynamic-instance behaviours (catalogue theme 11), on the simulation kit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_pyncette import ConfigurationError, Context, FailureMode
from celery_pyncette.testing import simulate
from tests.behaviour._pyncette_like import T0, pyncette_like, scheduled, started

TWO_SECONDS = timedelta(seconds=2)


def test_instances_run_on_their_own_interval_until_unscheduled() -> None:
    """Pyncette (test_dynamic_successful_task_interval): three 2 s instances, 10 s, then
    unscheduled: 15 executions, none after."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        for name in ("1", "2", "3"):
            pyncette.schedule_task(hello, name, interval=TWO_SECONDS)
        sim.advance(timedelta(seconds=10))
        assert [pyncette.unschedule_task(hello, n) for n in ("1", "2", "3")] == [True] * 3
        sim.advance(timedelta(seconds=10))
        runs = {n: scheduled(sim.executions(hello, n)) for n in ("1", "2", "3")}

    assert runs == {n: [2.0, 4.0, 6.0, 8.0, 10.0] for n in ("1", "2", "3")}


def test_more_due_instances_than_the_batch_size_all_run_in_the_same_tick() -> None:
    """Pyncette (..._small_batch_size): with batch_size=1, still 15 executions. Ours claims again
    at once when a batch came back full, so each occurrence of the three starts at its time."""
    pyncette = pyncette_like(batch_size=1)

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        for name in ("1", "2", "3"):
            pyncette.schedule_task(hello, name, interval=TWO_SECONDS)
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(hello)

    assert len(runs) == 15
    assert (
        sorted(started(runs))
        == sorted(scheduled(runs))
        == [t for t in (2.0, 4.0, 6.0, 8.0, 10.0) for _ in range(3)]
    )


def test_a_batch_size_of_zero_is_refused() -> None:
    """Pyncette (..._invalid_batch_size): ValueError. Ours: ConfigurationError naming the setting
    (every bad setting is one; deliberate)."""
    with pytest.raises(ConfigurationError, match="batch_size"):
        pyncette_like(batch_size=0)


def test_each_instance_gets_its_own_arguments() -> None:
    """Pyncette (..._extra_args): the instances see "bill", "steve" and "tibor"."""
    pyncette = pyncette_like()
    seen: set[tuple[str | None, str]] = set()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        seen.add((context.instance, context.args["username"]))

    with simulate(pyncette, start=T0) as sim:
        for name, user in (("1", "bill"), ("2", "steve"), ("3", "tibor")):
            pyncette.schedule_task(hello, name, interval=TWO_SECONDS, username=user)
        sim.advance(timedelta(seconds=10))

    assert seen == {("1", "bill"), ("2", "steve"), ("3", "tibor")}


def test_an_instance_that_unschedules_itself_runs_once() -> None:
    """Pyncette (test_dynamic_execute_once): 1 execution in 10 s of a 1 s instance."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        context.unschedule()

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=1))
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(hello)
        assert pyncette.get_task_state(hello, "1") is None

    assert scheduled(runs) == [1.0]


@pytest.mark.parametrize("mode", [FailureMode.NONE, FailureMode.COMMIT, FailureMode.UNLOCK])
def test_an_instance_that_unschedules_itself_and_then_raises_stops(mode: FailureMode) -> None:
    """Pyncette (test_dynamic_execute_once_unlock): 1 execution. Ours, in every failure mode: the
    failed run still applies context.unschedule()."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task(failure_mode=mode, lease_duration=timedelta(seconds=5))
    def hello(context: Context) -> None:
        context.unschedule()
        raise RuntimeError("after unscheduling")

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=1))
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(hello)
        state = pyncette.get_task_state(hello, "1")

    assert [r.outcome for r in runs] == ["failed"]
    assert state is None


def test_scheduling_an_instance_again_with_another_timing_replaces_it() -> None:
    """Pyncette (test_dynamic_register_again): 1 s then 2 s at once: 5 executions, at +1, +3, ...
    (it keeps the sooner next run). Ours: 5 executions too, but a changed timing takes the new
    one from now: +2, +4, ..., +10 (see docs: re-scheduling)."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=1))
        pyncette.schedule_task(hello, "1", interval=TWO_SECONDS)
        sim.advance(timedelta(seconds=10))
        runs = sim.executions(hello)

    assert scheduled(runs) == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_an_unscheduled_instance_is_gone_for_good() -> None:
    """Pyncette (test_dynamic_poll_after_unregister): not found afterwards; 0 executions in 60 s."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "1", interval=timedelta(seconds=1))
        assert pyncette.unschedule_task(hello, "1") is True
        assert pyncette.unschedule_task(hello, "1") is False
        assert pyncette.get_task_state(hello, "1") is None
        sim.advance(timedelta(seconds=60))
        assert sim.executions() == []


def test_template_keywords_are_defaults_of_its_instances() -> None:
    """Pyncette (test_dynamic_default_args): rajeev, jeethu and the default for one template;
    a template interval and a template cron used by instances that give only arguments."""
    pyncette = pyncette_like()
    seen: dict[str, str] = {}

    def record(context: Context) -> None:
        assert context.instance is not None
        seen[context.instance] = context.args["username"]

    hello1 = pyncette.dynamic_task(username="default", name="defaults.hello1")(record)
    hello2 = pyncette.dynamic_task(interval=timedelta(seconds=1), name="defaults.hello2")(record)
    hello3 = pyncette.dynamic_task(schedule="* * * * * *", name="defaults.hello3")(record)

    with simulate(pyncette, start=T0) as sim:
        one = timedelta(seconds=1)
        pyncette.schedule_task(hello1, "1", interval=one, username="rajeev")
        pyncette.schedule_task(hello1, "2", interval=one, username="jeethu")
        pyncette.schedule_task(hello1, "3", interval=one)
        pyncette.schedule_task(hello2, "4", username="imaana")
        pyncette.schedule_task(hello3, "5", username="laibuta")
        sim.advance(timedelta(seconds=1))
        starts = started(sim.executions())

    assert seen == {"1": "rajeev", "2": "jeethu", "3": "default", "4": "imaana", "5": "laibuta"}
    assert starts == [1.0] * 5


def test_a_static_task_cannot_have_instances() -> None:
    """Pyncette (test_instantiate_non_dynamic_task): ValueError. Ours: schedule_task on a static
    task is the counterpart."""
    pyncette = pyncette_like()

    @pyncette.task(interval=timedelta(seconds=1))
    def stat(context: Context) -> None: ...

    with pytest.raises(ValueError, match="static task"):
        pyncette.schedule_task(stat, "foo", interval=timedelta(seconds=1))
