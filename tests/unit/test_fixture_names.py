"""Fixture names, as in Pyncette: a name the context itself uses, or one already registered, is
refused with ``ValueError`` when the fixture is declared (not silently hidden or replaced)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette._context import RESERVED_FIXTURE_NAMES
from celery_pyncette._definitions import TaskDefinition


def a_fixture() -> Iterator[str]:
    yield "value"


@pytest.mark.parametrize(
    "name",
    [
        "scheduled_at",
        "args",
        "task",
        "instance",
        "heartbeat",
        "logger",
        "occurrence",
        "locked_until",
        "lease_duration",
        "lease_lost",
        "reschedule",
        "unschedule",
        "use_fixtures",
        "_fixtures",
    ],
)
def test_a_fixture_named_like_a_context_attribute_is_refused(pyncette: Pyncette, name: str) -> None:
    with pytest.raises(ValueError, match=f"fixture name '{name}' is taken by the context"):
        pyncette.fixture(name=name)(a_fixture)
    assert pyncette.runtime.catalog.fixtures == {}


def test_the_function_name_is_checked_too(pyncette: Pyncette) -> None:
    def args() -> Iterator[int]:
        yield 1

    with pytest.raises(ValueError, match="'args' is taken by the context"):
        pyncette.fixture()(args)


def test_every_attribute_of_a_context_is_reserved(pyncette: Pyncette) -> None:
    # A context attribute added later must be reserved too, or it would hide a fixture.
    context = Context(
        runtime=pyncette.runtime,
        task=TaskDefinition(name="t", celery_name="t", schedule=None),
        args={},
        occurrence=None,
    )
    assert set(dir(context)) <= RESERVED_FIXTURE_NAMES  # dir(): the class's and the instance's


def test_a_fixture_registered_twice_under_one_name_is_refused(pyncette: Pyncette) -> None:
    @pyncette.fixture(name="db")
    def first() -> Iterator[str]:
        yield "first"

    def second() -> Iterator[str]:
        yield "second"

    with pytest.raises(ValueError, match="fixture 'db' is already registered"):
        pyncette.fixture(name="db")(second)
    assert pyncette.runtime.catalog.fixtures == {"db": first}


def test_a_fixture_with_a_free_name_is_available_on_the_context(pyncette: Pyncette) -> None:
    seen: list[Any] = []

    @pyncette.fixture(name="db")
    def database() -> Iterator[str]:
        yield "connection"

    @pyncette.task(interval=timedelta(minutes=1), name="uses_db")
    def uses_db(context: Context) -> None:
        seen.append(context.db)

    uses_db.apply()
    assert seen == ["connection"]
    pyncette.runtime.teardown_fixtures()
