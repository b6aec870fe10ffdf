"""Templates carry defaults: ``dynamic_task`` / ``partitioned_task`` take ``schedule``,
``interval``, ``timezone`` and arguments that ``schedule_task`` (and ``schedule_tasks``) may
override. The default timing is the template's own field, never a static schedule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette._definitions import DefaultTiming
from celery_pyncette._dispatch import Dispatcher, sync_static
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

NINE_IN_NEW_YORK = datetime(2030, 6, 1, 13, 0, tzinfo=timezone.utc)  # EDT is UTC-4


@pytest.fixture
def reminders(pyncette: Pyncette, fake_clock: FakeClock) -> Any:
    @pyncette.dynamic_task(
        name="reminders",
        schedule="0 9 * * *",
        timezone="America/New_York",
        channel="email",
        lang="en",
    )
    def reminders(context: Context) -> None: ...

    return reminders


def test_a_template_default_timing_is_not_a_static_schedule(
    pyncette: Pyncette, fake_clock: FakeClock, reminders: Any
) -> None:
    definition = pyncette.definition(reminders)
    assert definition.dynamic
    assert definition.schedule is None
    assert definition.default_timing == DefaultTiming("0 9 * * *", None, "America/New_York")

    sync_static(pyncette.runtime, pyncette.definitions(), fake_clock.now)

    assert pyncette.get_task_state(reminders) is None, "no static record for a template"
    assert pyncette.store.list_instances("reminders", 0, 10, None) == []
    assert pyncette.list_task_states(reminders).tasks == []


def test_schedule_task_without_timing_uses_the_templates(
    pyncette: Pyncette, fake_clock: FakeClock, reminders: Any
) -> None:
    state = pyncette.schedule_task(reminders, "u1", user_id=1)

    assert (state.schedule, state.interval, state.timezone) == (
        "0 9 * * *",
        None,
        "America/New_York",
    )
    assert state.scheduled_at == NINE_IN_NEW_YORK
    assert dict(state.args) == {"channel": "email", "lang": "en", "user_id": 1}


def test_a_timing_given_replaces_the_templates(
    pyncette: Pyncette, fake_clock: FakeClock, reminders: Any
) -> None:
    # An interval over a template cron is not two timings; the template's zone is for crons only.
    every = pyncette.schedule_task(reminders, "every", interval=timedelta(minutes=5))
    assert (every.schedule, every.interval, every.timezone) == (None, timedelta(minutes=5), None)
    assert every.scheduled_at == fake_clock.now + timedelta(minutes=5)

    once_at = fake_clock.now + timedelta(hours=3)
    once = pyncette.schedule_task(reminders, "once", execute_at=once_at)
    assert (once.schedule, once.execute_at, once.timezone) == (None, once_at, None)

    # A cron of the call keeps the template's zone unless the call names its own.
    ten = pyncette.schedule_task(reminders, "ten", schedule="0 10 * * *")
    assert (ten.schedule, ten.timezone) == ("0 10 * * *", "America/New_York")
    paris = pyncette.schedule_task(reminders, "paris", timezone="Europe/Paris")
    assert (paris.schedule, paris.timezone) == ("0 9 * * *", "Europe/Paris")
    assert paris.scheduled_at == datetime(2030, 6, 2, 7, 0, tzinfo=timezone.utc)  # CEST, +2


def test_arguments_merge_template_defaults_then_the_calls(
    pyncette: Pyncette, fake_clock: FakeClock, reminders: Any
) -> None:
    state = pyncette.schedule_task(
        reminders, "u2", args={"lang": "fr", "lease_duraton": 1}, user_id=2
    )

    assert dict(state.args) == {"channel": "email", "lang": "fr", "lease_duraton": 1, "user_id": 2}


def test_schedule_tasks_uses_the_template_timing_and_merges_arguments(
    pyncette: Pyncette, fake_clock: FakeClock, reminders: Any
) -> None:
    locked = pyncette.schedule_tasks(
        reminders, {"a": {}, "b": {"lang": "de"}}, args={"channel": "sms"}
    )

    assert locked == []
    a, b = (pyncette.get_task_state(reminders, n) for n in ("a", "b"))
    assert a is not None
    assert b is not None
    assert (a.schedule, a.timezone, a.scheduled_at) == (
        "0 9 * * *",
        "America/New_York",
        NINE_IN_NEW_YORK,
    )
    assert dict(a.args) == {"channel": "sms", "lang": "en"}
    assert dict(b.args) == {"channel": "sms", "lang": "de"}


def test_a_template_without_timing_still_requires_one(
    pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    @pyncette.dynamic_task(name="bare", timezone="Europe/Dublin")
    def bare(context: Context) -> None: ...

    for schedule in (
        lambda: pyncette.schedule_task(bare, "x"),
        lambda: pyncette.schedule_task(bare, "x", timezone="Europe/Paris"),
        lambda: pyncette.schedule_tasks(bare, {"x": {}}),
    ):
        with pytest.raises(ValueError, match="no default timing"):
            schedule()
    assert pyncette.get_task_state(bare, "x") is None

    # Its zone is still the default of a cron given at schedule_task.
    state = pyncette.schedule_task(bare, "x", schedule="30 1 * * *")
    assert state.timezone == "Europe/Dublin"


def test_a_zone_over_a_template_interval_is_refused(
    pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    @pyncette.partitioned_task(partition_count=4, name="sync", interval=timedelta(minutes=15))
    def sync(context: Context) -> None: ...

    with pytest.raises(ValueError, match="cron schedule only"):
        pyncette.schedule_task(sync, "acme", timezone="Europe/Paris")
    assert pyncette.get_task_state(sync, "acme") is None

    state = pyncette.schedule_task(sync, "acme")
    assert state.interval == timedelta(minutes=15)
    assert state.scheduled_at == fake_clock.now + timedelta(minutes=15)


def test_an_instance_on_the_template_timing_runs_with_merged_arguments(
    pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    """Through the memory store, beat's dispatch and the worker: sent when the template's
    interval is due, with the template's arguments under the call's."""
    seen: list[tuple[str | None, dict[str, Any]]] = []

    @pyncette.dynamic_task(name="ping", interval=timedelta(seconds=10), target="a", retries=1)
    def ping(context: Context) -> None:
        seen.append((context.instance, dict(context.args)))

    pyncette.schedule_task(ping, "p1", target="b")
    dispatcher = Dispatcher(pyncette.runtime, "beat-1")

    def tick() -> list[Any]:
        definitions = pyncette.definitions()
        sync_static(pyncette.runtime, definitions, fake_clock.now)
        dispatcher.dispatch(definitions)
        return take_waiting(pyncette.app)

    assert tick() == []
    fake_clock.advance(seconds=10)
    (message,) = tick()
    pyncette.app.tasks[message.headers["task"]].apply(
        kwargs=message.decode()[1], headers=message.headers
    )

    assert seen == [("p1", {"target": "b", "retries": 1})]
    state = pyncette.get_task_state(ping, "p1")
    assert state is not None
    assert state.last_status == "success"
    assert state.scheduled_at == fake_clock.now + timedelta(seconds=10)
    assert pyncette.store.get(InstanceKey("ping", 0, STATIC_INSTANCE)) is None
