"""The runnable recipes in examples/recipes, exercised in process (memory store and broker)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from celery_pyncette import Pyncette
from celery_pyncette._dispatch import Dispatcher, sync_static
from celery_pyncette._runtime import teardown_fixtures
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.conftest import FakeClock
from tests.support.messages import take_waiting

os.environ["RECIPES_STORE"] = "memory://"
os.environ["RECIPES_BROKER"] = "memory://"


@pytest.fixture(autouse=True)
def _tear_down_fixtures() -> Iterator[None]:
    yield
    teardown_fixtures()


def recipe(name: str) -> ModuleType:
    return importlib.import_module(f"examples.recipes.{name}")


def send_due(
    pyncette: Pyncette, queue: str = "celery"
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """One beat tick, then the messages it sent to ``queue``."""
    app = pyncette.app
    sync_static(pyncette.runtime, pyncette.definitions(), pyncette_now())
    Dispatcher(pyncette.runtime, "beat").dispatch(pyncette.definitions())
    return [(m.headers["task"], m.decode()[1], m.headers) for m in take_waiting(app, queue)]


def pyncette_now() -> Any:
    from celery_pyncette import _clock as clock

    return clock.utcnow()


def execute(pyncette: Pyncette, message: tuple[str, dict[str, Any], dict[str, Any]]) -> Any:
    name, kwargs, headers = message
    return pyncette.app.tasks[name].apply(kwargs=kwargs, headers=headers)


def test_decorator_parameters_register_every_schedule(fake_clock: FakeClock) -> None:
    module = recipe("decorator_parameters")
    pyncette: Pyncette = module.pyncette

    names = {d.name for d in pyncette.definitions()}

    assert {"recipes.greet_abra", "recipes.greet_cadabra", "recipes.fire_and_forget"} <= names
    assert not pyncette.definition("examples.recipes.decorator_parameters.switched_off").enabled
    send_due(pyncette)
    fake_clock.advance(hours=19, minutes=1)  # 07:01 the next day: both greetings are due
    greetings = send_due(pyncette, queue="greetings")
    results = sorted(execute(pyncette, m).get() for m in greetings)
    assert results == ["Hello abra", "Hello cadabra"]


def test_the_middlewares_retry_and_keep_the_transaction(fake_clock: FakeClock) -> None:
    module = recipe("middlewares")
    pyncette: Pyncette = module.pyncette
    send_due(pyncette)
    fake_clock.advance(minutes=1)

    by_task = {m[0]: m for m in send_due(pyncette)}
    assert execute(pyncette, by_task["recipes.flaky"]).get() == "ok"
    assert len(module.FLAKY_CALLS) == 3

    execute(pyncette, by_task["recipes.record_visit"]).get()
    failing = ("recipes.record_visit", {"who": "x", "fail": True}, {})  # a direct call
    with pytest.raises(RuntimeError):
        execute(pyncette, failing).get()

    db = pyncette.runtime.fixture_values()["db"]
    assert db.execute("SELECT who FROM visits").fetchall() == [("scheduler",)]


def test_fixtures_are_available_on_the_context(fake_clock: FakeClock, tmp_path: Any) -> None:
    module = recipe("fixtures")
    pyncette: Pyncette = module.pyncette
    send_due(pyncette)
    fake_clock.advance(minutes=5)

    (message,) = send_due(pyncette)

    assert execute(pyncette, message).get() >= 0


def test_heartbeats_extend_the_lease(fake_clock: FakeClock) -> None:
    module = recipe("heartbeat")
    pyncette: Pyncette = module.pyncette
    send_due(pyncette)
    fake_clock.advance(hours=1)
    (message,) = [m for m in send_due(pyncette) if m[0] == "recipes.batch"]
    fake_clock.advance(seconds=20)

    assert execute(pyncette, message).get() == [0, 2, 4, 6, 8]

    state = pyncette.store.get(InstanceKey("recipes.batch", 0, STATIC_INSTANCE))
    assert state.last_status == "success"
    assert state.next_run == fake_clock.now.replace(minute=0, second=0) + timedelta(hours=1)
