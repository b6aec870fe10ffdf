"""Names: reserved, NUL, surrogates and over-long names are refused at every way in, unwritten."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery import Celery
from click.testing import CliRunner

from celery_pyncette import ConfigurationError, Context, Pyncette
from celery_pyncette._records import BEATS_TASK, SLOTS_TASK_PREFIX, TASKS_TASK
from celery_pyncette.cli import pyncette as pyncette_group
from celery_pyncette.stores.base import STATIC_INSTANCE

BAD_INSTANCES = [
    (STATIC_INSTANCE, "reserved: it is the record of a static task"),
    ("nul\x00byte", "NUL character"),
    ("lone\udc80surrogate", "lone surrogate"),
    ("x" * 1025, "the limit is 1024"),
    ("é" * 513, "the limit is 1024"),  # 1026 bytes as UTF-8
    ("", "non-empty string"),
    ("__pyncette_extra__:abc", "hold celery-pyncette's extra occurrences"),
    ("__pyncette", "hold celery-pyncette's extra occurrences"),
]
RESERVED_TASKS = [BEATS_TASK, TASKS_TASK, SLOTS_TASK_PREFIX + "abc", "__pyncette_future__"]


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def stored(pyncette: Pyncette) -> int:
    return pyncette.store.count_instances("hello", 0)


@pytest.mark.parametrize(("name", "rule"), BAD_INSTANCES)
def test_schedule_task_refuses_a_bad_instance_name_before_writing(
    pyncette: Pyncette, hello: object, name: str, rule: str
) -> None:
    with pytest.raises(ValueError, match=rule):
        pyncette.schedule_task(hello, name, interval=timedelta(minutes=1))
    assert stored(pyncette) == 0


@pytest.mark.parametrize(("name", "rule"), BAD_INSTANCES)
def test_schedule_tasks_refuses_the_whole_batch_for_one_bad_name(
    pyncette: Pyncette, hello: object, name: str, rule: str
) -> None:
    with pytest.raises(ValueError, match=rule):
        pyncette.schedule_tasks(hello, {"good": {}, name: {}}, interval=timedelta(minutes=1))
    assert stored(pyncette) == 0


@pytest.mark.parametrize(("name", "rule"), BAD_INSTANCES)
def test_reads_and_deletes_refuse_a_bad_instance_name(
    pyncette: Pyncette, hello: object, name: str, rule: str
) -> None:
    with pytest.raises(ValueError, match=rule):
        pyncette.get_task_state(hello, name)
    with pytest.raises(ValueError, match=rule):
        pyncette.unschedule_task(hello, name)


def test_the_static_instance_cannot_be_scheduled_as_a_dynamic_one(
    pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_task(hello, "bill", interval=timedelta(minutes=1))
    with pytest.raises(ValueError, match="__static__' is reserved"):
        pyncette.schedule_task(hello, STATIC_INSTANCE, interval=timedelta(minutes=1))
    assert [s.instance for s in pyncette.list_task_states(hello).tasks] == ["bill"]


@pytest.mark.parametrize("name", RESERVED_TASKS)
def test_a_task_may_not_take_a_reserved_name(pyncette: Pyncette, name: str) -> None:
    with pytest.raises(ValueError, match="is reserved: names starting with '__pyncette'"):

        @pyncette.dynamic_task(name=name)
        def clash(context: Context) -> None: ...


@pytest.mark.parametrize("name", ["nul\x00task", "lone\ud800", "t" * 201])
def test_a_task_name_must_be_text_every_store_keeps(pyncette: Pyncette, name: str) -> None:
    with pytest.raises(ValueError, match="task name"):

        @pyncette.task(name=name, interval=timedelta(minutes=1))
        def bad(context: Context) -> None: ...


def test_a_beat_schedule_entry_may_not_take_a_reserved_name(app: Celery) -> None:
    app.conf.beat_schedule = {BEATS_TASK: {"task": "x.y", "schedule": 60.0}}
    extension = Pyncette(app, url="memory://")
    with pytest.raises((ValueError, ConfigurationError), match="reserved"):
        extension.definitions()


@pytest.mark.parametrize("name", RESERVED_TASKS)
def test_the_api_names_the_rule_for_a_reserved_task_name(pyncette: Pyncette, name: str) -> None:
    for call in (
        lambda: pyncette.schedule_task(name, "bill", interval=timedelta(minutes=1)),
        lambda: pyncette.get_task_state(name, "bill"),
        lambda: pyncette.get_task_state(name),
        lambda: pyncette.unschedule_task(name, "bill"),
        lambda: pyncette.list_task_states(name),
        lambda: pyncette.strike(name),
    ):
        with pytest.raises(ValueError, match="is reserved"):
            call()


def invoke(app: Celery, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.output


def test_the_cli_refuses_reserved_names_naming_the_rule(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    code, output = invoke(app, "schedule", "hello", STATIC_INSTANCE, "--interval", "60")
    assert code == 1
    assert "'__static__' is reserved" in output
    assert stored(pyncette) == 0

    code, output = invoke(app, "show", BEATS_TASK)
    assert code == 1
    assert "is reserved" in output

    code, output = invoke(app, "unschedule", "hello", "nul\x00")
    assert code == 1
    assert "NUL character" in output
