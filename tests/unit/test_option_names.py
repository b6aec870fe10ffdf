"""Options are checked: a keyword that looks like a misspelt option is refused, naming the option
meant, before anything is registered or written; ``args={...}`` carries arguments whose names look
like options, wherever arguments are given."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import celery_pyncette
from celery_pyncette import Context, ExecutionMode, Pyncette
from celery_pyncette._definitions import OPTION_NAMES, TaskDefinition
from celery_pyncette._definitions import ExecutionMode as Mode
from celery_pyncette._occurrence import Occurrence
from tests.conftest import FakeClock


def test_the_issue_example_raises_instead_of_registering_an_at_least_once_task(
    app: Celery, pyncette: Pyncette
) -> None:
    def send(context: Context) -> None: ...

    with pytest.raises(ValueError, match="did you mean 'execution_mode'"):
        pyncette.task(
            schedule="* * * * *", excution_mode="at_most_once", lease_duraton=5, name="send"
        )(send)

    assert "send" not in app.tasks
    assert not pyncette.runtime.catalog.has("send")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("excution_mode", "execution_mode"),
        ("failur_mode", "failure_mode"),
        ("lease_duraton", "lease_duration"),
        ("catchup", "catch_up"),
        ("timezon", "timezone"),
        ("shedule", "schedule"),
        ("intervall", "interval"),
        ("enable", "enabled"),
        ("concurency_limit", "concurrency_limit"),
        ("log_arg", "log_args"),
        ("partition_cont", "partition_count"),
        ("exeute_at", "execute_at"),
        ("forse", "force"),
        ("qeue", "queue"),
        ("nme", "name"),
        ("queu", "queue"),
        ("soft_time_limt", "soft_time_limit"),
    ],
)
def test_a_misspelt_option_on_a_decorator_names_the_option_meant(
    pyncette: Pyncette, typo: str, meant: str
) -> None:
    declarations: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (pyncette.task, {"schedule": "* * * * *"}),
        (pyncette.dynamic_task, {}),
        (pyncette.partitioned_task, {}),
    ]
    for declare, timing in declarations:
        with pytest.raises(ValueError, match=f"did you mean '{meant}'") as raised:
            declare(**timing, **{typo: 1})
        assert "args=" in str(raised.value), "the message says how to pass such an argument"
    assert pyncette.definitions() == []


@pytest.mark.parametrize(
    ("declare", "option", "accepted_by"),
    [
        ("task", "execute_at", "schedule_task"),
        ("task", "force", "schedule_task"),
        ("task", "partition_count", "partitioned_task"),
        ("dynamic_task", "partition_selector", "partitioned_task"),
    ],
)
def test_an_option_of_another_call_is_refused_not_taken_for_an_argument(
    pyncette: Pyncette, declare: str, option: str, accepted_by: str
) -> None:
    options: dict[str, Any] = {option: 1}
    if declare == "task":
        options["interval"] = timedelta(seconds=5)
    with pytest.raises(ValueError, match=f"'{option}' is an option of {accepted_by}"):
        getattr(pyncette, declare)(**options)


@pytest.mark.parametrize("declare", ["task", "dynamic_task", "schedule_task"])
def test_pyncettes_fast_forward_is_refused_saying_what_to_use(
    pyncette: Pyncette, declare: str
) -> None:
    @pyncette.dynamic_task(name="template")
    def template(context: Context) -> None: ...

    calls = {
        "task": lambda: pyncette.task(interval=timedelta(seconds=5), fast_forward=True),
        "dynamic_task": lambda: pyncette.dynamic_task(fast_forward=True),
        "schedule_task": lambda: pyncette.schedule_task(
            template, "i", interval=timedelta(seconds=5), fast_forward=True
        ),
    }
    with pytest.raises(ValueError, match=r"a Pyncette option with no counterpart here.*catch_up"):
        calls[declare]()
    assert pyncette.get_task_state(template, "i") is None

    @pyncette.task(interval=timedelta(seconds=5), args={"fast_forward": True}, name="kept")
    def kept(context: Context) -> None: ...

    assert dict(pyncette.definition(kept).args) == {"fast_forward": True}


def test_extra_keywords_that_are_no_option_still_become_arguments(pyncette: Pyncette) -> None:
    # ``username`` shares most of its letters with ``name``, ``kind`` three of ``bind``'s: neither
    # is close enough to count as a typo.
    ordinary = {"username": "abra", "customer_id": 7, "user": "u", "kind": "daily", "case": 1}

    @pyncette.task(interval=timedelta(seconds=5), name="job", **ordinary)
    def job(context: Context) -> None: ...

    assert dict(pyncette.definition(job).args) == ordinary


def test_args_carries_arguments_named_like_options_on_every_decorator(pyncette: Pyncette) -> None:
    looks_like_options = {"lease_duraton": 5, "execution_mode": "mine", "args": [1]}

    @pyncette.task(interval=timedelta(seconds=5), name="static", args=looks_like_options, n=1)
    def static(context: Context) -> None: ...

    @pyncette.dynamic_task(name="dynamic", args=looks_like_options)
    def dynamic(context: Context) -> None: ...

    @pyncette.partitioned_task(partition_count=4, name="partitioned", args=looks_like_options)
    def partitioned(context: Context) -> None: ...

    assert dict(pyncette.definition(static).args) == {**looks_like_options, "n": 1}
    assert pyncette.definition(static).execution_mode is ExecutionMode.AT_LEAST_ONCE
    assert pyncette.definition(static).lease_duration is None
    assert dict(pyncette.definition(dynamic).args) == looks_like_options
    assert dict(pyncette.definition(partitioned).args) == looks_like_options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a", "b"], "args must be a mapping"),
        ({1: "x"}, "args must be a mapping"),
        ({"n": object()}, "JSON"),
    ],
)
def test_bad_args_are_refused(pyncette: Pyncette, args: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pyncette.task(interval=timedelta(seconds=5), args=args)


def test_an_argument_given_both_ways_is_refused(pyncette: Pyncette) -> None:
    with pytest.raises(ValueError, match="'n' given both"):
        pyncette.task(interval=timedelta(seconds=5), args={"n": 1}, n=2)


@pytest.fixture
def template(pyncette: Pyncette) -> Any:
    @pyncette.dynamic_task(name="template", region="eu")
    def template(context: Context) -> None: ...

    return template


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"lease_duraton": 5}, "did you mean 'lease_duration'"),
        ({"excution_mode": "at_most_once"}, "did you mean 'execution_mode'"),
        ({"intervall": timedelta(seconds=5)}, "did you mean 'interval'"),
        ({"frce": True}, "did you mean 'force'"),
        ({"lease_duration": timedelta(seconds=5)}, "'lease_duration' is an option of the task"),
        ({"queue": "fast"}, "'queue' is an option of the task decorators"),
    ],
)
def test_schedule_task_refuses_option_like_keywords_and_writes_nothing(
    pyncette: Pyncette, template: Any, keywords: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pyncette.schedule_task(template, "x", interval=timedelta(seconds=5), **keywords)
    assert pyncette.get_task_state(template, "x") is None


def test_schedule_task_takes_option_like_arguments_in_args(
    pyncette: Pyncette, template: Any
) -> None:
    state = pyncette.schedule_task(
        template,
        "x",
        interval=timedelta(seconds=5),
        args={"lease_duraton": 5, "force": "yes", "name": "Ann"},
        user_id=42,
    )

    assert dict(state.args) == {
        "region": "eu",
        "lease_duraton": 5,
        "force": "yes",
        "name": "Ann",
        "user_id": 42,
    }
    stored = pyncette.get_task_state(template, "x")
    assert stored is not None
    assert stored.args == state.args


def test_schedule_tasks_merges_common_args_under_each_instances_own(
    pyncette: Pyncette, template: Any
) -> None:
    locked = pyncette.schedule_tasks(
        template,
        {"a": {}, "b": {"lease_duraton": 1, "region": "us"}},
        interval=timedelta(seconds=5),
        args={"lease_duraton": 5, "tier": "gold"},
    )

    assert locked == []
    a, b = (pyncette.get_task_state(template, name) for name in ("a", "b"))
    assert a is not None
    assert b is not None
    assert dict(a.args) == {"region": "eu", "lease_duraton": 5, "tier": "gold"}
    assert dict(b.args) == {"region": "us", "lease_duraton": 1, "tier": "gold"}


def test_schedule_tasks_refuses_bad_common_args_and_writes_nothing(
    pyncette: Pyncette, template: Any
) -> None:
    with pytest.raises(ValueError, match="args must be a mapping"):
        pyncette.schedule_tasks(template, {"a": {}}, interval=timedelta(seconds=5), args=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="instances must be a mapping"):
        pyncette.schedule_tasks(template, {"a": [1]}, interval=timedelta(seconds=5))  # type: ignore[dict-item]
    assert pyncette.get_task_state(template, "a") is None


def dynamic_context(pyncette: Pyncette, fake_clock: FakeClock) -> Context:
    definition = TaskDefinition(
        name="template", celery_name="template", schedule=None, dynamic=True
    )
    occurrence = Occurrence(
        task="template",
        instance="x",
        partition=0,
        scheduled_at=fake_clock.now,
        mode=Mode.AT_LEAST_ONCE,
        spec={"kind": "interval", "seconds": 60.0},
    )
    return Context(runtime=pyncette.runtime, task=definition, args={"n": 1}, occurrence=occurrence)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"intervall": timedelta(seconds=5)}, "did you mean 'interval'"),
        ({"timezon": "Europe/Paris"}, "did you mean 'timezone'"),
        ({"force": True}, "'force' is an option of schedule_task, not of context.reschedule"),
    ],
)
def test_reschedule_refuses_option_like_keywords(
    pyncette: Pyncette, fake_clock: FakeClock, keywords: dict[str, Any], message: str
) -> None:
    context = dynamic_context(pyncette, fake_clock)
    with pytest.raises(ValueError, match=message):
        context.reschedule(**keywords)
    assert context.rescheduled is None


def test_reschedule_takes_option_like_arguments_in_args(
    pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    context = dynamic_context(pyncette, fake_clock)

    context.reschedule(args={"lease_duraton": 5}, m=2)

    assert context.rescheduled is not None
    schedule, args = context.rescheduled
    assert schedule.to_spec() == {"kind": "interval", "seconds": 60.0}
    assert args == {"n": 1, "lease_duraton": 5, "m": 2}


def test_the_option_names_cover_every_keyword_of_the_task_api() -> None:
    # A keyword added to one of these signatures must be known, or its typos would pass silently.
    calls: list[Callable[..., Any]] = [
        Pyncette.schedule_task,
        Pyncette.schedule_tasks,
        Pyncette.partitioned_task,
        Context.reschedule,
    ]
    named = {
        name
        for call in calls
        for name, parameter in inspect.signature(call).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        or (parameter.default is not inspect.Parameter.empty)
    }
    assert named <= OPTION_NAMES
    assert {"execution_mode", "failure_mode", "lease_duration", "catch_up", "timezone"} <= (
        OPTION_NAMES
    )


def test_one_did_you_mean_serves_settings_and_options() -> None:
    package = Path(celery_pyncette.__file__).parent
    users = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(
            (isinstance(node, ast.Import) and any(a.name == "difflib" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and node.module == "difflib")
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert users == ["_spelling.py"]


def test_execute_at_stays_an_option_of_schedule_task(pyncette: Pyncette, template: Any) -> None:
    at = datetime(2030, 6, 1, 13, 0, tzinfo=timezone.utc)
    state = pyncette.schedule_task(template, "once", execute_at=at)
    assert state.execute_at == at
    assert dict(state.args) == {"region": "eu"}
