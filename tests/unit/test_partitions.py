"""Partitioned tasks: routing, polling a subset, and refusing a silently changed partition count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery

from celery_pyncette import ConfigurationError, Context, Pyncette
from celery_pyncette._config import settings_from
from celery_pyncette._extension import default_partition_selector
from celery_pyncette._partitions import (
    RANGE_SELECTOR,
    PartitionLayout,
    repartition,
    stored_layout,
    stored_partition_count,
)
from celery_pyncette.beat import Scheduler
from celery_pyncette.stores.base import InstanceKey
from celery_pyncette.stores.memory import MemoryStore
from tests.conftest import FakeClock


def declare(
    app: Celery, store: MemoryStore, count: int, **settings: object
) -> tuple[Pyncette, object]:
    pyncette = Pyncette(app, url="memory://", **settings)  # type: ignore[arg-type]
    pyncette.runtime.use_store(store)

    @pyncette.partitioned_task(partition_count=count, name="spread")
    def spread(context: Context) -> None: ...

    return pyncette, spread


def fresh_app() -> Celery:
    return Celery("partitions", broker="memory://", set_as_current=False)


def test_instances_route_to_their_selected_partition(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    pyncette, spread = declare(fresh_app(), store, 8)

    pyncette.schedule_task(spread, "bill", schedule="* * * * *")

    partition = default_partition_selector(8, "bill")
    assert store.get(InstanceKey("spread", partition, "bill")) is not None
    state = pyncette.get_task_state(spread, "bill")
    assert state is not None
    assert state.partition == partition
    assert pyncette.unschedule_task(spread, "bill") is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("spread=0-2,5", {"spread": (0, 1, 2, 5)}),
        ({"spread": [3, 1, 1]}, {"spread": (1, 3)}),
        ("spread=1;other=0", {"spread": (1,), "other": (0,)}),
    ],
)
def test_enabled_partitions_can_come_from_configuration(value: object, expected: dict) -> None:
    assert settings_from({"pyncette_enabled_partitions": value}, {}).enabled_partitions == expected


@pytest.mark.parametrize("value", ["spread", "spread=a-b", {"spread": "0"}, {"spread": [-1]}, 5])
def test_malformed_enabled_partitions_are_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="pyncette_enabled_partitions"):
        settings_from({"pyncette_enabled_partitions": value}, {})


def test_a_beat_polls_only_its_configured_partitions(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    pyncette, _spread = declare(fresh_app(), store, 4, enabled_partitions="spread=1,3")

    (definition,) = [d for d in pyncette.definitions() if d.name == "spread"]

    assert definition.polled_partitions == (1, 3)


def test_enabled_partitions_must_name_a_partition_the_task_has(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    pyncette, _ = declare(fresh_app(), store, 4, enabled_partitions="spread=7")

    with pytest.raises(ConfigurationError, match=r"0\.\.3"):
        pyncette.definitions()


def test_a_changed_partition_count_is_refused_until_the_instances_are_moved(
    fake_clock: FakeClock,
) -> None:
    store = MemoryStore()
    old, spread_old = declare(fresh_app(), store, 4)
    names = [f"user-{i}" for i in range(40)]
    for name in names:
        old.schedule_task(spread_old, name, interval=timedelta(minutes=5), user=name)
    fake_clock.advance(minutes=5)
    store.claim_due(
        "spread",
        default_partition_selector(4, "user-0"),
        fake_clock.now,
        100,
        timedelta(seconds=30),
        "beat",
    )

    new_app = fresh_app()
    new, spread_new = declare(new_app, store, 16)
    with pytest.raises(ConfigurationError, match="repartition spread --to 16"):
        new.schedule_task(spread_new, "someone", schedule="* * * * *")
    with pytest.raises(ConfigurationError, match="partition_count=16"):
        Scheduler(new_app).tick()

    definition = new.definition("spread")
    first = repartition(store, definition, 16, fake_clock.now)
    assert not first.complete, "running instances stay until they finish"
    # the new count is in force at once; the old partitions are still polled until the rerun
    assert stored_layout(store, "spread") == PartitionLayout(
        16, moving_from=(4,), selector=RANGE_SELECTOR
    )

    fake_clock.advance(minutes=1)  # the leases expire
    second = repartition(store, definition, 16, fake_clock.now)
    assert second.complete
    assert stored_layout(store, "spread") == PartitionLayout(16, selector=RANGE_SELECTOR)
    for name in names:
        record = store.get(InstanceKey("spread", default_partition_selector(16, name), name))
        assert record is not None, name
        assert record.args == {"user": name}
    total = sum(store.count_instances("spread", p) for p in range(16))
    assert total == len(names)
    new.schedule_task(spread_new, "someone", schedule="* * * * *")


def test_a_new_count_for_a_task_without_instances_is_simply_recorded(fake_clock: FakeClock) -> None:
    store = MemoryStore()
    old, _ = declare(fresh_app(), store, 4)
    old.check_partitions(old.definition("spread"))

    new, spread = declare(fresh_app(), store, 8)
    new.schedule_task(spread, "first", schedule="* * * * *")

    assert stored_partition_count(store, "spread") == 8
