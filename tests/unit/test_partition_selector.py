"""The default partition selector is Pyncette's: SHA-1 as a range, so a doubled count splits each
partition in two (what ``enabled_partitions`` splits rely on)."""

from __future__ import annotations

import pytest

from celery_pyncette._extension import default_partition_selector
from celery_pyncette._partitions import modulo_partition_selector

NAMES = [f"user-{i}" for i in range(3000)] + ["", "ünï", "a" * 300, "Lorem ipsum dolor sit amet"]
COUNTS = [1, 2, 3, 5, 8, 16, 32, 100, 1024]


def test_pyncettes_regression_value() -> None:
    # Pinned in Pyncette's own suite; the modulo form of versions up to 0.1.0 gives another one.
    assert default_partition_selector(10**12, "Lorem ipsum dolor sit amet") == 222413034928
    assert modulo_partition_selector(10**12, "Lorem ipsum dolor sit amet") == 637223215641


@pytest.mark.parametrize("count", COUNTS)
def test_every_name_lands_in_a_partition_and_every_partition_is_used(count: int) -> None:
    placed = [default_partition_selector(count, name) for name in NAMES]

    assert all(0 <= p < count for p in placed)
    if count <= 100:  # 3,000 names fill 100 partitions (each expects 30)
        assert set(placed) == set(range(count))


@pytest.mark.parametrize("count", COUNTS)
def test_doubling_the_count_splits_partition_p_into_2p_and_2p_plus_1(count: int) -> None:
    for name in NAMES:
        before = default_partition_selector(count, name)
        assert default_partition_selector(2 * count, name) in (2 * before, 2 * before + 1), name


@pytest.mark.parametrize(("count", "factor"), [(4, 3), (8, 4), (5, 10), (32, 32)])
def test_multiplying_the_count_by_k_splits_p_into_k_consecutive_partitions(
    count: int, factor: int
) -> None:
    for name in NAMES:
        before = default_partition_selector(count, name)
        after = default_partition_selector(count * factor, name)
        assert factor * before <= after < factor * (before + 1), name


def test_a_beat_that_polled_p_polls_exactly_its_instances_in_2p_and_2p_plus_1() -> None:
    # Fleet A polled partitions 0-3 of 8; after doubling, A polls 0-7 of 16 and finds every
    # instance it polled before, and no other.
    fleet_before = {0, 1, 2, 3}
    fleet_after = {q for p in fleet_before for q in (2 * p, 2 * p + 1)}

    before = {n for n in NAMES if default_partition_selector(8, n) in fleet_before}
    after = {n for n in NAMES if default_partition_selector(16, n) in fleet_after}

    assert before == after
    assert 0 < len(before) < len(NAMES)


def test_the_modulo_form_lacks_the_splitting_property() -> None:
    # Why the selector changed: under modulo, doubling scatters partition p over p and p + count.
    split = [
        n for n in NAMES if modulo_partition_selector(16, n) // 2 != modulo_partition_selector(8, n)
    ]
    assert len(split) > len(NAMES) // 3
