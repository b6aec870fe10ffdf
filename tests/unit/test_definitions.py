"""Declaring tasks: every invalid input is a ValueError naming the problem, at decoration time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, ExecutionMode, FailureMode, Pyncette


def test_a_static_task_is_a_celery_task_with_its_definition(
    app: Celery, pyncette: Pyncette
) -> None:
    @pyncette.task(
        schedule="* * * * * */10", name="reports.daily", queue="reports", username="abra"
    )
    def daily(context: Context) -> None: ...

    definition = pyncette.definition(daily)
    assert daily.name == "reports.daily"
    assert app.tasks["reports.daily"] == daily
    assert definition.schedule is not None
    assert definition.schedule.to_spec()["expression"] == "* * * * * */10"
    assert dict(definition.args) == {"username": "abra"}
    assert dict(definition.options) == {"queue": "reports"}
    assert definition.execution_mode is ExecutionMode.AT_LEAST_ONCE
    assert definition.failure_mode is FailureMode.NONE


def test_the_default_name_follows_celery_naming(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(seconds=12))
    def every_12_seconds(context: Context) -> None: ...

    assert every_12_seconds.name == f"{__name__}.every_12_seconds"


def test_several_decorators_with_names_register_several_schedules(pyncette: Pyncette) -> None:
    @pyncette.task(schedule="0 * * * *", name="hourly")
    @pyncette.task(schedule="0 0 * * *", name="daily")
    def report(context: Context) -> str:
        return "done"

    assert {d.name for d in pyncette.definitions()} == {"hourly", "daily"}
    assert pyncette.function(report) is not None


def test_a_direct_call_runs_without_a_lease(pyncette: Pyncette) -> None:
    seen: list[Context] = []

    @pyncette.task(interval=timedelta(seconds=5), username="x")
    def job(context: Context) -> None:
        seen.append(context)

    job.apply(kwargs={"extra": 1}).get()

    (context,) = seen
    assert context.scheduled_at is None
    assert context.instance is None
    assert context.args == {"username": "x", "extra": 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "61 * * * *"}, "cron"),
        ({"schedule": "* * *"}, "cron"),
        ({"schedule": "0 0 30 2 *"}, "never"),
        ({"schedule": "* * * * *", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"interval": timedelta(0)}, "interval"),
        ({"interval": timedelta(seconds=-1)}, "interval"),
        ({"interval": 5}, "timedelta"),
        ({}, "exactly one"),
        ({"schedule": "* * * * *", "interval": timedelta(seconds=1)}, "exactly one"),
        ({"schedule": "* * * * *", "when": object()}, "JSON"),
        (
            {
                "schedule": "* * * * *",
                "execution_mode": ExecutionMode.AT_MOST_ONCE,
                "failure_mode": FailureMode.UNLOCK,
            },
            "AT_LEAST_ONCE",
        ),
        ({"schedule": "* * * * *", "lease_duration": timedelta(0)}, "lease_duration"),
        ({"schedule": "* * * * *", "execution_mode": "fast"}, "execution_mode"),
        ({"schedule": "* * * * *", "enabled": "yes"}, "enabled"),
    ],
)
def test_invalid_declarations_are_refused_with_the_problem_named(
    pyncette: Pyncette, options: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pyncette.task(**options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "* * * * *", "interval": timedelta(seconds=1)}, "exactly one"),
        ({"schedule": "61 * * * *"}, "61"),
        ({"interval": timedelta(0)}, "interval"),
        ({"interval": timedelta(seconds=5), "timezone": "Europe/Paris"}, "cron schedule only"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ],
)
def test_a_dynamic_template_default_timing_is_checked_at_decoration(
    pyncette: Pyncette, options: dict[str, Any], message: str
) -> None:
    # Accepted as defaults for schedule_task (tests/unit/test_template_defaults.py), but checked.
    with pytest.raises(ValueError, match=message):
        pyncette.dynamic_task(**options)


def test_arguments_too_large_for_every_store_are_refused(pyncette: Pyncette) -> None:
    with pytest.raises(ValueError, match="limit"):
        pyncette.task(schedule="* * * * *", blob="x" * 300_000)


def test_a_duplicate_name_is_refused(pyncette: Pyncette) -> None:
    @pyncette.task(schedule="* * * * *", name="same")
    def first(context: Context) -> None: ...

    with pytest.raises(ValueError, match="already registered"):

        @pyncette.task(schedule="* * * * *", name="same")
        def second(context: Context) -> None: ...


def test_an_execute_at_must_be_aware(pyncette: Pyncette) -> None:
    @pyncette.dynamic_task(name="once")
    def once(context: Context) -> None: ...

    with pytest.raises(ValueError, match=r"aware|naive|timezone"):
        pyncette.schedule_task(once, "a", execute_at=datetime(2030, 1, 1))
    assert pyncette.get_task_state(once, "a") is None
    pyncette.schedule_task(once, "b", execute_at=datetime(2030, 1, 1, tzinfo=timezone.utc))


def test_a_custom_base_class_composes_and_its_call_wraps_the_function(pyncette: Pyncette) -> None:
    from celery import Task

    inside: list[bool] = []
    state = {"active": False}

    class FrameworkTask(Task):  # type: ignore[misc]
        """Like Flask's task class: pushes a context around the call."""

        def __call__(self, *args: object, **kwargs: object) -> object:
            state["active"] = True
            try:
                return super().__call__(*args, **kwargs)
            finally:
                state["active"] = False

    @pyncette.task(interval=timedelta(seconds=5), base=FrameworkTask, name="framework")
    def job(context: Context) -> None:
        inside.append(state["active"])

    job.apply().get()

    assert isinstance(job._get_current_object(), FrameworkTask)
    assert inside == [True]
