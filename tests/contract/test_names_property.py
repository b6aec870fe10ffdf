"""Names on every store: stored and returned exactly, or refused by the API before any write.

A property over instance and task names (NUL, lone surrogates, control characters, very long,
any Unicode), through the public API on each contract backend: ``schedule_task`` either raises
``ValueError`` with nothing written, or the instance reads back (``get_task_state``,
``list_task_states``, the store's own listing) under exactly that name and is removed again. No
name may reach a store and fail there (``StoreError``) or come back changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery import Celery
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from celery_pyncette import Context, Pyncette
from celery_pyncette._names import MAX_INSTANCE_BYTES, MAX_TASK_NAME
from celery_pyncette.stores.base import Store

# Every code point, lone surrogates included (hypothesis leaves them out unless asked).
ANY_CHARACTER = st.characters(exclude_categories=())
EDGES = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "__static__",
    " ",
    "trailing ",
    "\t\r\n",
    "\x7f\x1b",
    "\u200f\u202e",  # right-to-left marks
    "Bill",
    "bill",
    "𝄞" * (MAX_INSTANCE_BYTES // 4),  # exactly the limit, 4-byte characters
    "é" * (MAX_INSTANCE_BYTES // 2 + 1),  # one byte over
    "x" * MAX_INSTANCE_BYTES,
    "x" * (MAX_INSTANCE_BYTES + 1),
    "{tag}:i:x",
    "%_\\'\"",
]
NAMES = st.one_of(
    st.sampled_from(EDGES),
    st.text(ANY_CHARACTER, min_size=0, max_size=20),
    st.text(ANY_CHARACTER, min_size=250, max_size=1100),
)
TASK_NAMES = st.one_of(
    st.sampled_from(
        ["t\x00", "t\udc80", "__pyncette_beats__", "x" * MAX_TASK_NAME, "x" * 201, "𝄞" * 200]
    ),
    st.text(ANY_CHARACTER, min_size=1, max_size=30),
)
FEW = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture
def pyncette(store: Store) -> Iterator[Pyncette]:
    app = Celery(f"names-{uuid.uuid4().hex[:6]}", broker="memory://", set_as_current=False)
    extension = Pyncette(app, url="memory://")
    extension.runtime.use_store(store)  # the backend under test
    yield extension
    app.close()


def test_every_instance_name_is_kept_exactly_or_refused_before_writing(
    pyncette: Pyncette, store: Store
) -> None:
    @pyncette.dynamic_task(name="names.t")
    def task(context: Context) -> None: ...

    @FEW
    @given(name=NAMES)
    @example(name="a\x00b")  # PostgreSQL text cannot hold NUL
    @example(name="x\udfffy")  # not UTF-8
    @example(name="__static__")
    @example(name="__pyncette_extra__:0:x")  # the extra occurrences' names are refused
    @example(name="𝄞" * (MAX_INSTANCE_BYTES // 4))  # at the limit: kept
    @example(name="x" * (MAX_INSTANCE_BYTES + 1))
    @example(name="trailing ")
    def check(name: str) -> None:
        before = store.count_instances("names.t", 0)
        try:
            pyncette.schedule_task(task, name, interval=timedelta(minutes=5), n=1)
        except ValueError:
            assert store.count_instances("names.t", 0) == before, "refused, yet written"
            return
        state = pyncette.get_task_state(task, name)
        assert state is not None
        assert state.instance == name
        listed = [s.instance for s in pyncette.list_task_states(task, limit=1000).tasks]
        assert listed.count(name) == 1
        assert [r.key.instance for r in store.list_instances("names.t", 0, 1000)].count(name) == 1
        assert pyncette.unschedule_task(task, name) is True
        assert pyncette.get_task_state(task, name) is None

    check()


def test_every_task_name_is_kept_exactly_or_refused_before_writing(
    pyncette: Pyncette, store: Store
) -> None:
    declared: set[str] = set()

    @FEW
    @given(name=TASK_NAMES)
    @example(name="t\x00")
    @example(name="𝄞" * MAX_TASK_NAME)  # 800 bytes: the SQL column's limit, kept
    @example(name="__pyncette_tasks__")
    def check(name: str) -> None:
        if name in declared:
            return
        try:

            @pyncette.dynamic_task(name=name)
            def task(context: Context) -> None: ...

        except ValueError:
            return  # refused at declaration: nothing can have been written
        declared.add(name)
        pyncette.schedule_task(name, "i", interval=timedelta(minutes=5))
        assert [r.key.task for r in store.list_instances(name, 0, 10)] == [name]
        state = pyncette.get_task_state(name, "i")
        assert state is not None
        assert state.task == name
        assert pyncette.unschedule_task(name, "i") is True

    check()
