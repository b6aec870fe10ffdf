"""``celery pyncette quarantined`` and the quarantine warning of ``celery pyncette status``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Context, Pyncette
from celery_pyncette.errors import CorruptRecordError
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.conftest import FakeClock
from tests.unit.test_cli import beat_seen, invoke


@pytest.fixture
def poisoned(pyncette: Pyncette, fake_clock: FakeClock) -> Pyncette:
    """Four dynamic instances and a static record quarantined, one healthy instance."""

    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    @pyncette.task(name="nightly", schedule="0 3 * * *")
    def nightly(context: Context) -> None: ...

    store = pyncette.store
    for name in ("a", "b", "c", "d", "ok"):
        pyncette.schedule_task(hello, name, interval=timedelta(seconds=10))
    for name in ("a", "b", "c", "d"):
        assert store.quarantine(
            InstanceKey("hello", 0, name), None, f"{name} is garbage", fake_clock.now
        )
    static = InstanceKey("nightly", 0, STATIC_INSTANCE)
    store.upsert(store.get(InstanceKey("hello", 0, "ok")).with_changes(key=static), fake_clock.now)
    assert store.quarantine(static, None, "spec is not JSON", fake_clock.now)
    beat_seen(pyncette, "beat-1", fake_clock.now, {"hello": [0], "nightly": [0]})
    return pyncette


def test_quarantined_lists_records_with_reasons(app: Celery, poisoned: Pyncette) -> None:
    code, output = invoke(app, "quarantined", "--json")

    assert code == 0, output
    rows = json.loads(output)
    assert [(r["task"], r["instance"]) for r in rows] == [
        ("hello", "a"), ("hello", "b"), ("hello", "c"), ("hello", "d"), ("nightly", None),
    ]  # fmt: skip
    assert rows[0]["reason"] == "a is garbage"
    assert rows[0]["partition"] == 0
    assert rows[0]["since"] == "2030-06-01T12:00:00+00:00"

    code, table = invoke(app, "quarantined", "--task", "nightly")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == ["TASK", "INSTANCE", "PARTITION", "SINCE", "REASON"]
    assert lines[1].split()[:3] == ["nightly", "-", "0"]
    assert lines[1].endswith("spec is not JSON")


def test_quarantined_limit_says_when_there_are_more(app: Celery, poisoned: Pyncette) -> None:
    result = invoke(app, "quarantined", "--limit", "2", "--json")
    code, output = result
    assert code == 0
    assert "more than 2 quarantined record(s)" in output  # the runner mixes stderr in
    assert invoke(app, "quarantined", "--limit", "0")[0] == 2
    code, output = invoke(app, "quarantined", "--task", "removed.long.ago", "--json")
    assert code == 0
    assert json.loads(output) == []


def test_status_warns_with_the_count_and_the_first_keys(app: Celery, poisoned: Pyncette) -> None:
    code, output = invoke(app, "status", "--no-backlog")

    assert code == 0, "a warning: beat runs everything else"
    assert (
        "warning: 5 record(s) quarantined: hello[0] 'a', hello[0] 'b', hello[0] 'c', ... "
        "(see `celery pyncette quarantined`)"
    ) in output

    code, output = invoke(app, "status", "--no-backlog", "--json")
    report = json.loads(output)
    assert report["quarantined"]["count"] == 5
    assert report["quarantined"]["more"] is False
    assert report["quarantined"]["first"][-1]["task"] == "nightly"


def test_status_says_nothing_of_quarantine_when_none_is(
    app: Celery, pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    beat_seen(pyncette, "beat-1", fake_clock.now, {})

    code, output = invoke(app, "status", "--no-backlog", "--json")

    assert code == 0
    assert json.loads(output)["quarantined"] == {"count": 0, "more": False, "first": []}
    assert "quarantined" not in invoke(app, "status", "--no-backlog")[1]


def test_list_and_the_backlog_leave_quarantined_records_out(
    app: Celery, poisoned: Pyncette, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    store = poisoned.store
    real_get = store.get

    def get(key: InstanceKey) -> Any:
        if key.task == "nightly":  # as a SQL or Redis store reads a record it cannot decode
            raise CorruptRecordError(key, "spec is not JSON")
        return real_get(key)

    monkeypatch.setattr(store, "get", get)
    fake_clock.advance(seconds=30)
    beat_seen(poisoned, "beat-1", fake_clock.now, {"hello": [0], "nightly": [0]})

    code, output = invoke(app, "list", "--json")
    assert code == 0, output
    rows = {row["task"]: row for row in json.loads(output)}
    assert rows["nightly"]["next_run"] is None

    code, output = invoke(app, "status", "--json")
    assert code == 0, output
    backlog = {b["task"]: b for b in json.loads(output)["backlog"]}
    assert backlog["hello"]["due"] == 1, "only the healthy instance is due"
