"""Misfire grace and expiry on the testing kit: an occurrence that beat claims too late is settled
(``"missed"`` past its grace, ``"expired"`` past its ``expires``) without running, and the
schedule goes on."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette, metrics
from celery_pyncette._misfire import SPEC_KEY
from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.testing import simulate
from tests.behaviour import T0, at, outcomes, sched

MINUTE = timedelta(minutes=1)


def _every_minute(pyncette: Pyncette, **options: Any) -> Any:
    @pyncette.task(interval=MINUTE, **options)
    def tick(context: Context) -> None:
        pass

    return tick


def test_an_occurrence_claimed_past_its_grace_is_missed_and_the_next_runs(
    pyncette: Pyncette,
) -> None:
    tick = _every_minute(pyncette, misfire_grace=timedelta(seconds=30))
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=150))  # runs +60, +120
        sim.advance(timedelta(seconds=90), beat=False)  # beat is down from 150 to 240
        sim.advance(timedelta(seconds=1))  # +180 is claimed 60 s late
        state = pyncette.get_task_state(tick)
        assert state is not None
        assert state.last_status == "missed"
        assert state.scheduled_at == at(300)
        sim.advance(timedelta(seconds=60))
        runs = sim.executions(tick)

    assert sched(runs) == [60, 120, 300]
    assert outcomes(runs) == ["success"] * 3


def test_an_occurrence_claimed_within_its_grace_runs(pyncette: Pyncette) -> None:
    tick = _every_minute(pyncette, misfire_grace=timedelta(seconds=90))
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=150))
        sim.advance(timedelta(seconds=90), beat=False)
        sim.advance(timedelta(seconds=1))  # +180 is claimed 60 s late: in its grace
        runs = sim.executions(tick)

    assert sched(runs) == [60, 120, 180]
    assert [r.started_at for r in runs][-1] == at(240)


def test_without_a_grace_a_late_occurrence_is_coalesced_and_runs(pyncette: Pyncette) -> None:
    tick = _every_minute(pyncette)
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=150))
        sim.advance(timedelta(minutes=10), beat=False)
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(tick)

    assert sched(runs) == [60, 120, 180]
    assert runs[-1].started_at == at(750)


def test_with_catch_up_each_replayed_occurrence_past_the_grace_is_missed(
    pyncette: Pyncette,
) -> None:
    tick = _every_minute(pyncette, misfire_grace=timedelta(seconds=90), catch_up=True)
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=150))
        sim.advance(timedelta(seconds=270), beat=False)  # down until 420
        sim.advance(timedelta(seconds=5))
        runs = sim.executions(tick)

    # At 420: +180 (240 s late), +240 (180 s), +300 (120 s) are missed; +360 (60 s) and +420 run.
    assert sched(runs) == [60, 120, 360, 420]


def test_a_batch_of_missed_occurrences_is_logged_once_and_counted(
    make_pyncette: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    monkeypatch.setattr(metrics, "_metrics", None)  # a private registry for this test
    registry = prometheus_client.CollectorRegistry()
    assert metrics.install(registry)
    pyncette = make_pyncette(batch_size=100)

    @pyncette.dynamic_task(interval=MINUTE, misfire_grace=timedelta(seconds=10))
    def each(context: Context) -> None:
        pass

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_tasks(each, {f"u{i}": {} for i in range(20)})
        sim.advance(timedelta(seconds=90), beat=False)
        with caplog.at_level(logging.WARNING, logger="celery_pyncette.dispatch"):
            sim.advance(timedelta(seconds=1))
        assert sim.executions(each) == []
        states = [pyncette.get_task_state(each, f"u{i}") for i in range(20)]

    assert {s.last_status for s in states if s is not None} == {"missed"}
    assert {s.scheduled_at for s in states if s is not None} == {at(120)}
    lines = [r for r in caplog.records if "misfire grace" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].getMessage() == (
        f"20 occurrence(s) of {each.name} not sent: 20 past their misfire grace (missed), "
        "0 past their expiry (expired), up to 30 s late; 20 settled"
    )
    value = registry.get_sample_value(
        "pyncette_commits_total", {"task": each.name, "status": "missed"}
    )
    assert value == 20


def test_an_instance_keeps_its_own_grace_in_its_spec(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(interval=MINUTE)
    def each(context: Context) -> None:
        pass

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(each, "strict", misfire_grace=timedelta(seconds=10))
        pyncette.schedule_tasks(each, {"bulk": {}}, misfire_grace=timedelta(seconds=10))
        pyncette.schedule_task(each, "lenient")
        stored = sim.store.get(InstanceKey(each.name, 0, "strict"))
        assert stored is not None
        assert stored.spec[SPEC_KEY] == 10.0
        sim.advance(timedelta(seconds=90), beat=False)
        sim.advance(timedelta(seconds=1))
        strict, bulk = (
            pyncette.get_task_state(each, "strict"),
            pyncette.get_task_state(each, "bulk"),
        )
        runs = sim.executions(each)

    assert [r.instance for r in runs] == ["lenient"]
    assert strict is not None
    assert strict.last_status == "missed"
    assert bulk is not None
    assert bulk.last_status == "missed"


def test_the_tasks_grace_applies_to_instances_without_their_own(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(interval=MINUTE, misfire_grace=timedelta(seconds=10))
    def each(context: Context) -> None:
        pass

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(each, "plain")
        pyncette.schedule_task(each, "own", misfire_grace=timedelta(minutes=5))
        sim.advance(timedelta(seconds=90), beat=False)
        sim.advance(timedelta(seconds=1))
        runs = sim.executions(each)
        plain = pyncette.get_task_state(each, "plain")

    assert [r.instance for r in runs] == ["own"]
    assert plain is not None
    assert plain.last_status == "missed"


def test_a_rescheduled_instance_keeps_its_grace(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(interval=MINUTE)
    def each(context: Context) -> None:
        context.reschedule(interval=timedelta(minutes=2))

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(each, "a", misfire_grace=timedelta(seconds=10))
        sim.advance(timedelta(seconds=61))
        stored = sim.store.get(InstanceKey(each.name, 0, "a"))

    assert stored is not None
    assert stored.spec["seconds"] == 120.0
    assert stored.spec[SPEC_KEY] == 10.0


def test_an_occurrence_claimed_past_its_expiry_is_expired(pyncette: Pyncette) -> None:
    tick = _every_minute(pyncette, expires=timedelta(seconds=20))
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=70))  # runs +60
        sim.advance(timedelta(seconds=80), beat=False)  # down until 150
        sim.advance(timedelta(seconds=1))  # +120 is claimed 31 s late: past its expiry
        state = pyncette.get_task_state(tick)
        sim.advance(timedelta(seconds=40))
        runs = sim.executions(tick)

    assert state is not None
    assert state.last_status == "expired"
    assert state.scheduled_at == at(180)
    assert sched(runs) == [60, 180]


def test_an_expiry_in_seconds_counts_from_the_occurrence(pyncette: Pyncette) -> None:
    tick = _every_minute(pyncette, expires=20)
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=70))  # runs +60
        sim.advance(timedelta(seconds=65), beat=False)  # down until 135
        sim.advance(timedelta(seconds=1))  # +120 is claimed 15 s late: within its 20 s
        sim.advance(timedelta(seconds=66), beat=False)  # down until 202
        sim.advance(timedelta(seconds=1))  # +180 is claimed 22 s late: expired
        state = pyncette.get_task_state(tick)
        runs = sim.executions(tick)

    assert sched(runs) == [60, 120]
    assert runs[-1].started_at == at(135)
    assert state is not None
    assert state.last_status == "expired"
    assert state.scheduled_at == at(240)


@pytest.mark.parametrize(
    "bad", [timedelta(seconds=-1), timedelta(0), 30, "30s", timedelta(days=10_000)]
)
def test_a_bad_grace_is_refused_and_nothing_is_written(pyncette: Pyncette, bad: Any) -> None:
    with pytest.raises(ValueError, match="misfire_grace"):
        pyncette.task(interval=MINUTE, misfire_grace=bad)

    @pyncette.dynamic_task(interval=MINUTE)
    def each(context: Context) -> None:
        pass

    with pytest.raises(ValueError, match="misfire_grace"):
        pyncette.schedule_task(each, "a", misfire_grace=bad)
    with pytest.raises(ValueError, match="misfire_grace"):
        pyncette.schedule_tasks(each, {"b": {}}, misfire_grace=bad)
    assert pyncette.get_task_state(each, "a") is None
    assert pyncette.get_task_state(each, "b") is None


@pytest.mark.parametrize("bad", [-1, timedelta(seconds=-5), float("nan"), "tomorrow", [1]])
def test_a_bad_expires_is_refused(pyncette: Pyncette, bad: Any) -> None:
    with pytest.raises(ValueError, match="expires"):
        pyncette.task(interval=MINUTE, expires=bad)


def test_reschedule_refuses_a_grace(pyncette: Pyncette) -> None:
    errors: list[BaseException] = []

    @pyncette.dynamic_task(interval=MINUTE)
    def each(context: Context) -> None:
        try:
            context.reschedule(interval=MINUTE, misfire_grace=timedelta(seconds=1))
        except ValueError as exc:
            errors.append(exc)

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(each, "a")
        sim.advance(timedelta(seconds=61))

    assert len(errors) == 1
    assert "not of context.reschedule" in str(errors[0])


def test_beat_sends_occurrence_settled_for_what_it_settles_late(pyncette: Pyncette) -> None:
    from celery_pyncette import signals

    settled: list[tuple[str | None, str]] = []

    def receiver(sender: str, instance: str | None, outcome: str, **_: Any) -> None:
        settled.append((instance, outcome))

    @pyncette.partitioned_task(partition_count=2, expires=20)
    def each(context: Context) -> None:
        pass

    signals.occurrence_settled.connect(receiver, weak=False)
    try:
        with simulate(pyncette, start=T0) as sim:
            pyncette.schedule_task(
                each, "a", execute_at=at(60), misfire_grace=timedelta(seconds=10)
            )
            pyncette.schedule_task(each, "b", execute_at=at(45))
            sim.advance(timedelta(seconds=75), beat=False)
            sim.advance(timedelta(seconds=1))  # "a" is 15 s late (past its grace), "b" 30 s
            runs = sim.executions(each)
    finally:
        signals.occurrence_settled.disconnect(receiver)

    assert runs == []
    assert sorted(settled) == [("a", "missed"), ("b", "expired")]


def test_an_at_most_once_occurrence_past_its_grace_is_missed_not_sent(
    pyncette: Pyncette,
) -> None:
    from celery_pyncette import ExecutionMode

    tick = _every_minute(
        pyncette, misfire_grace=timedelta(seconds=30), execution_mode=ExecutionMode.AT_MOST_ONCE
    )
    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=30))  # beat starts: first run at +60
        sim.advance(timedelta(seconds=60), beat=False)  # down until 90
        sim.advance(timedelta(seconds=1))  # +60 is 30 s late: in its grace, sent and run
        sim.advance(timedelta(seconds=70), beat=False)  # down until 161
        sim.advance(timedelta(seconds=1))  # +120 is 41 s late: missed
        state = pyncette.get_task_state(tick)
        runs = sim.executions(tick)

    assert sched(runs) == [60]
    assert state is not None
    assert state.last_status == "missed"
    assert state.scheduled_at == at(180)


def test_scheduling_again_with_the_same_timing_and_grace_keeps_the_next_run(
    pyncette: Pyncette,
) -> None:
    @pyncette.dynamic_task(interval=MINUTE)
    def each(context: Context) -> None:
        pass

    grace = timedelta(seconds=10)
    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(each, "a", misfire_grace=grace)  # next run at 60
        sim.advance(timedelta(seconds=30))
        pyncette.schedule_task(each, "a", misfire_grace=grace)
        same = pyncette.get_task_state(each, "a")
        pyncette.schedule_task(each, "a", misfire_grace=timedelta(seconds=20))
        changed = pyncette.get_task_state(each, "a")

    assert same is not None
    assert same.scheduled_at == at(60)
    assert same.misfire_grace == grace
    # Another grace is another stored spec: the instance is scheduled afresh from now.
    assert changed is not None
    assert changed.scheduled_at == at(90)
    assert changed.misfire_grace == timedelta(seconds=20)
