"""Pyncette 1.1's refusals at declaration (catalogue theme 17): no clock needed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from celery_pyncette import Context, ExecutionMode, FailureMode
from tests.behaviour._pyncette_like import pyncette_like


def body(context: Context) -> None: ...


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "no schedule at all": ({}, "schedule"),
    "execute_at on a static task": (
        {"interval": timedelta(seconds=1), "execute_at": datetime(2030, 1, 1, tzinfo=timezone.utc)},
        "execute_at",
    ),
    "both interval and schedule": (
        {"interval": timedelta(seconds=1), "schedule": "* * * * *"},
        "exactly one",
    ),
    "an invalid cron": ({"schedule": "abracadabra"}, "abracadabra"),
    "at-most-once with unlock": (
        {
            "interval": timedelta(seconds=1),
            "execution_mode": ExecutionMode.AT_MOST_ONCE,
            "failure_mode": FailureMode.UNLOCK,
        },
        "AT_LEAST_ONCE",
    ),
    "an unknown time zone": (
        {"schedule": "* * * * *", "timezone": "Gondwana/Atlantis"},
        "Gondwana",
    ),
    "a time zone with an interval": (
        {"interval": timedelta(seconds=1), "timezone": "Europe/Dublin"},
        "cron",
    ),
    "an argument that is not JSON": ({"interval": timedelta(seconds=1), "extra": object()}, "JSON"),
}


@pytest.mark.parametrize("options", list(CASES.values()), ids=list(CASES))
def test_a_bad_declaration_is_refused_with_a_value_error(
    options: tuple[dict[str, Any], str],
) -> None:
    """Pyncette (test_invalid_configuration): ValueError for each (its invalid cron raises
    croniter's own error; ours is a ValueError naming the expression, deliberately)."""
    keywords, named = options
    pyncette = pyncette_like()
    with pytest.raises(ValueError, match=named):
        pyncette.task(**keywords)(body)
    assert pyncette.definitions() == []


def test_a_duplicate_task_name_is_refused() -> None:
    """Pyncette (test_invalid_configuration, "Duplicate task name"): ValueError."""
    pyncette = pyncette_like()
    pyncette.task(interval=timedelta(seconds=1), name="dup")(body)
    with pytest.raises(ValueError, match="already registered"):
        pyncette.task(interval=timedelta(seconds=1), name="dup")(body)


@pytest.mark.parametrize(
    "declare",
    [
        lambda p: p.task(interval=timedelta(seconds=1)),
        lambda p: p.fixture(),
    ],
    ids=["task", "fixture"],
)
def test_decorating_something_that_is_not_a_function_is_refused(
    declare: Callable[[Any], Callable[[Any], Any]],
) -> None:
    """Pyncette (test_invalid_configuration, objects without a name): ValueError."""
    with pytest.raises(ValueError, match="42"):
        declare(pyncette_like())(42)
