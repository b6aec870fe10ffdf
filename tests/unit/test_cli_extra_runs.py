"""``celery pyncette run`` and ``celery pyncette backfill``, through click's runner."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from celery import Celery
from click.testing import CliRunner

from celery_pyncette import Context, Pyncette
from celery_pyncette._records import extra_target, is_extra_instance
from celery_pyncette.cli import pyncette as pyncette_group
from tests.conftest import FakeClock


def invoke(app: Celery, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def extras(pyncette: Pyncette, task: str = "hello") -> list[tuple[str | None, datetime]]:
    return [
        (extra_target(r), r.next_run)
        for r in pyncette.store.list_instances(task, 0, 1000)
        if is_extra_instance(r.key.instance)
    ]


def test_run_writes_one_extra_occurrence_now_and_list_still_counts_one_instance(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    pyncette.schedule_task(hello, "bill", schedule="0 9 * * *")

    code, out, _ = invoke(app, "run", "hello", "bill", "--json")

    assert code == 0
    assert json.loads(out) == [
        {"task": "hello", "instance": "bill", "scheduled_at": fake_clock.now.isoformat()}
    ]
    assert extras(pyncette) == [("bill", fake_clock.now)]
    code, out, _ = invoke(app, "list", "--json")
    assert {r["task"]: r["instances"] for r in json.loads(out)}["hello"] == 1
    code, out, _ = invoke(app, "show", "hello", "--json")
    assert [r["instance"] for r in json.loads(out)] == ["bill"]


def test_run_of_a_running_instance_fails_unless_forced(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=1))
    fake_clock.advance(seconds=2)
    (_claimed,) = pyncette.store.claim_due(
        "hello", 0, fake_clock.now, 10, timedelta(minutes=1), "beat"
    )

    code, _, err = invoke(app, "run", "hello", "bill")
    assert code == 1
    assert "is running" in err
    assert extras(pyncette) == []

    code, out, _ = invoke(app, "run", "hello", "bill", "--force")
    assert code == 0
    assert "bill" in out
    assert extras(pyncette) == [("bill", fake_clock.now)]


def test_run_of_a_static_task_and_of_an_unknown_instance(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    @pyncette.task(schedule="0 0 * * *", name="nightly")
    def nightly(context: Context) -> None: ...

    code, _, _ = invoke(app, "run", "nightly")
    assert code == 0
    assert extras(pyncette, "nightly") == [(None, fake_clock.now)]

    code, _, err = invoke(app, "run", "hello", "nobody")
    assert code == 1
    assert "has no instance 'nobody'" in err


def test_backfill_writes_the_window_once(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    pyncette.schedule_task(hello, "bill", schedule="0 9 * * *")  # now: 2030-06-01 12:00
    window = ("--from", "2030-05-25T00:00:00+00:00", "--to", "2030-05-27T00:00:00Z")

    code, out, err = invoke(app, "backfill", "hello", "bill", *window, "--json")
    assert code == 0
    days = [datetime(2030, 5, d, 9, tzinfo=timezone.utc) for d in (25, 26)]
    assert [r["scheduled_at"] for r in json.loads(out)] == [d.isoformat() for d in days]
    assert sorted(extras(pyncette)) == [("bill", d) for d in days]

    code, out, err = invoke(app, "backfill", "hello", "bill", *window)
    assert code == 0
    assert "0 occurrence(s) to run" in err
    assert len(extras(pyncette)) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--from", "2030-05-01T00:00:00+00:00", "--to", "2030-06-01T00:00:00+00:00",
          "--max", "10"), "more than 10 occurrences"),
        (("--from", "2030-05-25T00:00:00", "--to", "2030-05-27T00:00:00+00:00"),
         "--from '2030-05-25T00:00:00' has no UTC offset"),
        (("--from", "last week", "--to", "2030-05-27T00:00:00+00:00"), "not an ISO 8601 time"),
        (("--from", "2030-05-27T00:00:00+00:00", "--to", "2030-05-25T00:00:00+00:00"),
         "must be before end"),
    ],
)  # fmt: skip
def test_backfill_refuses_a_bad_window_and_writes_nothing(
    app: Celery,
    pyncette: Pyncette,
    hello: object,
    fake_clock: FakeClock,
    options: tuple[str, ...],
    message: str,
) -> None:
    pyncette.schedule_task(hello, "bill", schedule="0 9 * * *")

    code, _, err = invoke(app, "backfill", "hello", "bill", *options)

    assert code == 1
    assert message in err
    assert extras(pyncette) == []
