"""Pyncette 1.1's fixture behaviours (catalogue theme 9), on the simulation kit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from celery_pyncette import Context
from celery_pyncette.testing import simulate
from tests.behaviour._pyncette_like import T0, pyncette_like


def test_a_fixture_is_set_up_once_shared_by_every_run_and_torn_down_once() -> None:
    """Pyncette (test_fixture): entered 1, called 5 times in 10 s of a 2 s task, exited 1.

    Ours sets it up at the first execution of the (simulated) worker process and tears it down
    when the simulation ends, as a worker does at shutdown."""
    pyncette = pyncette_like()
    counts = {"entered": 0, "called": 0, "exited": 0}

    @pyncette.fixture(name="hello")
    def hello() -> Iterator[object]:
        counts["entered"] += 1
        yield lambda: counts.__setitem__("called", counts["called"] + 1)
        counts["exited"] += 1

    @pyncette.task(interval=timedelta(seconds=2))
    def greet(context: Context) -> None:
        context.hello()

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=10))
        assert counts == {"entered": 1, "called": 5, "exited": 0}

    assert counts == {"entered": 1, "called": 5, "exited": 1}


def test_a_fixture_named_like_a_context_attribute_or_twice_is_refused() -> None:
    """Pyncette (test_fixture_name_invalid): ValueError for "scheduled_at" and for a duplicate."""
    pyncette = pyncette_like()

    def fixture() -> Iterator[int]:
        yield 1

    with pytest.raises(ValueError, match="scheduled_at"):
        pyncette.fixture(name="scheduled_at")(fixture)
    pyncette.fixture(name="duplicate")(fixture)
    with pytest.raises(ValueError, match="duplicate"):
        pyncette.fixture(name="duplicate")(fixture)
