"""The runtime is the one owner of per-process state: the store, its clock, strikes, fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from celery import Celery

from celery_pyncette import Pyncette
from celery_pyncette._runtime import existing_runtime, runtime_for
from celery_pyncette.stores.memory import MemoryStore


class ForkAwareStore(MemoryStore):
    """A memory store that counts the after-fork calls it gets."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.after_forks = 0

    def after_fork(self) -> None:
        self.after_forks += 1


def in_child(check: Callable[[], bool]) -> int:
    """Fork; the child evaluates ``check()`` and exits 0 when it is true; the child's status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        try:
            ok = check()
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_tells_the_inherited_store_and_starts_its_own_state(
    pyncette: Pyncette,
) -> None:
    store = ForkAwareStore()
    pyncette.runtime.use_store(store)
    parent_view = pyncette.runtime.strike_view

    def child_sees_a_fresh_process() -> bool:
        runtime = pyncette.runtime
        return (
            runtime.store is store
            and store.after_forks == 1
            and runtime.strike_view is not parent_view
            and runtime.store is store  # a second use does not call after_fork again
            and store.after_forks == 1
        )

    assert in_child(child_sees_a_fresh_process) == 0
    assert store.after_forks == 0, "the parent's store is untouched"
    assert pyncette.runtime.strike_view is parent_view


def test_fixtures_set_up_in_the_parent_are_not_the_childs(pyncette: Pyncette) -> None:
    set_up: list[int] = []

    @pyncette.fixture()
    def resource() -> Iterator[int]:
        set_up.append(os.getpid())
        yield os.getpid()

    assert pyncette.runtime.fixture_values()["resource"] == os.getpid()

    def child_sets_up_its_own() -> bool:
        return pyncette.runtime.fixture_values()["resource"] == os.getpid() != set_up[0]

    assert in_child(child_sets_up_its_own) == 0
    pyncette.runtime.teardown_fixtures()


def test_a_declared_task_is_bound_to_its_runtime_when_it_is_made(pyncette: Pyncette) -> None:
    @pyncette.task(interval=timedelta(minutes=1))
    def every_minute() -> None:
        pass

    task = pyncette.app.tasks[every_minute.name]
    assert type(task).pyncette_runtime is pyncette.runtime


def test_an_app_has_one_runtime(app: Celery) -> None:
    assert existing_runtime(app) is None
    runtime = runtime_for(app)
    assert runtime_for(app) is runtime is existing_runtime(app)
    with pytest.raises(Exception, match="already created"):
        Pyncette(app)
