"""Pyncette 1.1's state queries and paging (catalogue theme 14), on the simulation kit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_pyncette import Context
from celery_pyncette.testing import simulate, sleep
from tests.behaviour._pyncette_like import T0, after, pyncette_like


def test_the_state_of_a_scheduled_instance() -> None:
    """Pyncette (test_get_task_existing): name, extra_args["foo"], a scheduled_at, no lock."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0):
        pyncette.schedule_task(hello, "test_instance", interval=timedelta(seconds=5), foo="bar")
        state = pyncette.get_task_state(hello, "test_instance")
        missing = pyncette.get_task_state(hello, "nonexistent")

    assert state is not None
    assert (state.instance, dict(state.args)) == ("test_instance", {"foo": "bar"})
    assert (state.interval, state.scheduled_at) == (timedelta(seconds=5), after(5))
    assert (state.locked_until, state.locked_by) == (None, None)
    assert missing is None  # Pyncette (test_get_task_nonexistent): None


def test_a_static_task_has_a_state_once_beat_ran_and_takes_no_instance_name() -> None:
    """Pyncette (test_get_task_static): a state with a scheduled_at after a 1 s run; ValueError
    for an instance name."""
    pyncette = pyncette_like()

    @pyncette.task(interval=timedelta(seconds=5))
    def stat(context: Context) -> None: ...

    with simulate(pyncette, start=T0) as sim:
        sim.advance(timedelta(seconds=1))
        state = pyncette.get_task_state(stat)
        with pytest.raises(ValueError, match="static task"):
            pyncette.get_task_state(stat, "instance")

    assert state is not None
    assert state.task == pyncette.definition(stat).name
    assert state.scheduled_at == after(5)


def test_listing_a_template_without_instances_gives_an_empty_last_page() -> None:
    """Pyncette (test_list_tasks_empty): no tasks, no continuation token."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0):
        page = pyncette.list_task_states(hello)

    assert (page.tasks, page.continuation_token) == ([], None)


def test_listing_returns_every_instance_with_its_arguments() -> None:
    """Pyncette (test_list_tasks_multiple): three states, each with its foo."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0):
        for n, seconds in ((1, 5), (2, 10), (3, 15)):
            pyncette.schedule_task(
                hello, f"task{n}", interval=timedelta(seconds=seconds), foo=f"bar{n}"
            )
        page = pyncette.list_task_states(hello)

    assert {(s.instance, s.args["foo"], s.interval) for s in page.tasks} == {
        ("task1", "bar1", timedelta(seconds=5)),
        ("task2", "bar2", timedelta(seconds=10)),
        ("task3", "bar3", timedelta(seconds=15)),
    }
    assert page.continuation_token is None


def test_paging_with_a_limit_and_a_token_reaches_every_instance_once() -> None:
    """Pyncette (test_list_tasks_pagination): a first page of 2; all pages together give 5."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None: ...

    with simulate(pyncette, start=T0):
        for n in range(5):
            pyncette.schedule_task(hello, f"task{n}", interval=timedelta(seconds=5))
        pages = [pyncette.list_task_states(hello, limit=2)]
        while pages[-1].continuation_token is not None and len(pages) < 10:
            token = pages[-1].continuation_token
            pages.append(pyncette.list_task_states(hello, limit=2, continuation_token=token))

    assert [len(p.tasks) for p in pages] == [2, 2, 1]
    assert sorted(s.instance or "" for p in pages for s in p.tasks) == [
        f"task{n}" for n in range(5)
    ]


def test_listing_the_instances_of_a_static_task_is_refused() -> None:
    """Pyncette (test_list_tasks_non_dynamic_fails): ValueError."""
    pyncette = pyncette_like()

    @pyncette.task(interval=timedelta(seconds=5))
    def stat(context: Context) -> None: ...

    with simulate(pyncette, start=T0), pytest.raises(ValueError, match="static task"):
        pyncette.list_task_states(stat)


def test_a_running_instance_shows_its_lock_until_it_commits() -> None:
    """Pyncette (test_get_task_locked_state): locked_until and locked_by set while it runs. Ours:
    locked until the run's start plus the 60 s lease, by the worker's lease holder."""
    pyncette = pyncette_like()

    @pyncette.dynamic_task()
    def hello(context: Context) -> None:
        sleep(30)

    with simulate(pyncette, start=T0) as sim:
        pyncette.schedule_task(hello, "test", interval=timedelta(seconds=5))
        sim.advance(timedelta(seconds=10))
        running = pyncette.get_task_state(hello, "test")
        sim.advance(timedelta(seconds=26))
        after_commit = pyncette.get_task_state(hello, "test")
        runs = sim.executions(hello)

    assert running is not None
    assert running.locked_until == after(5 + 60)
    assert running.locked_by is not None
    # The first run committed at +35 (last_status success); the occurrences that fell during it
    # are coalesced into one run, due at once: the second run holds the lock now.
    assert [(r.scheduled_at, r.started_at) for r in runs] == [
        (after(5), after(5)),
        (after(35), after(35)),
    ]
    assert after_commit is not None
    assert (after_commit.last_run_at, after_commit.last_status) == (after(35), "success")
    assert after_commit.locked_until == after(35 + 60)
