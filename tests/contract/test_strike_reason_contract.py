"""Strike reasons, run over every store: stored and listed with the strike, replaced when the same
rule is added again, refused when malformed (nothing written), and strikes stored before reasons
existed (each backend's ``write_legacy_strike`` writes one as that version did) still decode.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from celery_pyncette.stores._checks import STRIKE_REASON_CHARS
from celery_pyncette.stores.base import Store, Strike


def listed(store: Store) -> list[Strike]:
    return sorted(store.list_strikes(), key=repr)


def test_a_strike_is_listed_with_its_reason(store: Store) -> None:
    whole = Strike("t", reason="incident 4711")
    by_arg = Strike(None, "customer_id", "==", 12345, reason="Störung: 🚨 billing")
    plain = Strike("t", "user", "==", "bill")
    longest = Strike("u", reason="x" * STRIKE_REASON_CHARS)

    for strike in (whole, by_arg, plain, longest):
        store.add_strike(strike)

    assert listed(store) == sorted([whole, by_arg, plain, longest], key=repr)
    assert {s.reason for s in store.list_strikes()} == {
        "incident 4711",
        "Störung: 🚨 billing",
        None,
        "x" * STRIKE_REASON_CHARS,
    }


def test_adding_the_same_rule_again_replaces_its_reason_and_moves_the_marker(
    store: Store,
) -> None:
    store.add_strike(Strike("t", "user", "==", "bill", reason="first"))
    before = store.strikes_marker()

    store.add_strike(Strike("t", "user", "==", "bill", reason="second"))
    assert store.list_strikes() == [Strike("t", "user", "==", "bill", reason="second")]
    replaced = store.strikes_marker()
    assert replaced != before  # every view re-reads and sees the new reason

    store.add_strike(Strike("t", "user", "==", "bill"))
    assert store.list_strikes() == [Strike("t", "user", "==", "bill")]  # None clears it


def test_a_restore_needs_no_reason_and_leaves_none_behind(store: Store) -> None:
    store.add_strike(Strike("t", reason="incident 4711"))

    assert store.remove_strike(Strike("t")) is True
    assert store.list_strikes() == []

    store.add_strike(Strike("t"))  # the rule again, without a reason: the old one is gone
    assert store.list_strikes() == [Strike("t")]


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (4711, "must be a string"),
        (b"incident", "must be a string"),
        ("", "must not be blank"),
        ("   ", "must not be blank"),
        ("incident\n4711", "one line"),
        ("tab\there", "one line"),
        ("x" * (STRIKE_REASON_CHARS + 1), f"at most {STRIKE_REASON_CHARS} characters"),
    ],
)
def test_a_malformed_reason_is_refused_and_nothing_is_written(
    store: Store, reason: Any, message: str
) -> None:
    store.add_strike(Strike("t", reason="kept"))
    marker = store.strikes_marker()

    with pytest.raises(ValueError, match=message):
        store.add_strike(Strike("t", reason=reason))
    with pytest.raises(ValueError, match=message):
        store.add_strike(Strike("other", reason=reason))

    assert store.list_strikes() == [Strike("t", reason="kept")]
    assert store.strikes_marker() == marker


def test_strikes_stored_before_reasons_still_decode(store: Store, backend: ModuleType) -> None:
    whole = Strike("t")
    by_arg = Strike(None, "customer_id", ">=", 3)
    backend.write_legacy_strike(store, whole)
    backend.write_legacy_strike(store, by_arg)
    store.setup()  # what an upgrade runs first; it must keep the old strikes

    assert listed(store) == sorted([whole, by_arg], key=repr)
    assert all(s.reason is None for s in store.list_strikes())

    store.add_strike(Strike("t", reason="now with a reason"))
    assert listed(store) == sorted([Strike("t", reason="now with a reason"), by_arg], key=repr)
    assert store.remove_strike(by_arg) is True
    assert store.list_strikes() == [Strike("t", reason="now with a reason")]
