"""Extra occurrences (run now, backfill) on beat's dispatch and the worker's outcomes, in process
(the fake clock, kombu's memory transport); and backfill's window arithmetic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from celery import Celery

from celery_pyncette import Context, Pyncette, current_context
from celery_pyncette import _backfill as rules
from celery_pyncette._occurrence import HEADER, Occurrence
from celery_pyncette._records import extra_key, is_extra_instance
from celery_pyncette.schedules import CronSchedule, IntervalSchedule
from celery_pyncette.stores.base import STATIC_INSTANCE, InstanceKey
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import static_state, tick

UTC = timezone.utc


def test_an_extra_messages_header_names_the_instance_and_its_record(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    pyncette.schedule_task(hello, "bill", interval=timedelta(seconds=1), args={"n": 1})
    fake_clock.advance(seconds=1)
    (own,) = tick(pyncette)
    at = pyncette.run_now(hello, "bill", force=True)  # its own message waits for a worker
    (extra,) = tick(pyncette)

    assert "record" not in own[2][HEADER]  # the usual header is as it was
    occurrence = Occurrence.from_header(extra[2][HEADER])
    assert occurrence is not None
    assert (occurrence.instance, occurrence.scheduled_at) == ("bill", at)
    assert occurrence.record is not None
    assert is_extra_instance(occurrence.record)
    assert occurrence.key == extra_key("hello", 0, "bill", at)
    assert occurrence.instance_key == InstanceKey("hello", 0, "bill")
    assert occurrence.spec == {
        "kind": "once",
        "at": at.isoformat(),
        "extra": {"instance": "bill", "why": "run_now"},
    }
    assert extra[1] == {"n": 1}


def test_run_now_of_a_beat_schedule_entry_on_a_plain_task(
    fake_clock: FakeClock, app: Celery
) -> None:
    seen: list[Any] = []

    @app.task(name="plain.add_now")
    def add(x: int, y: int) -> int:
        seen.append(current_context())
        return x + y

    app.conf.beat_schedule = {
        "add-hourly": {"task": "plain.add_now", "schedule": 3600.0, "args": (1, 2)}
    }
    pyncette = Pyncette(app, url="memory://")
    assert tick(pyncette) == []
    before = static_state(pyncette, "add-hourly")
    at = pyncette.run_now("add-hourly")

    (message,) = tick(pyncette)
    name, _kwargs, headers = message
    result = app.tasks[name].apply(args=(1, 2), headers=headers)

    assert result.get() == 3
    assert seen[0].scheduled_at == at
    assert seen[0].instance is None
    after = static_state(pyncette, "add-hourly")
    assert after.next_run == before.next_run
    assert after.last_run_at is None
    names = [r.key.instance for r in pyncette.store.list_instances("add-hourly", 0, 10)]
    assert names == [STATIC_INSTANCE]
    pyncette.close()


def test_windows_merge_and_the_ledger_keeps_the_latest_hundred() -> None:
    day = datetime(2030, 1, 1, tzinfo=UTC)
    windows: list[rules.Window] = []
    for d in range(0, 2 * (rules.MAX_WINDOWS + 10), 2):  # disjoint: a day on, a day off
        windows = rules.merged(windows, (day + timedelta(days=d), day + timedelta(days=d + 1)))

    assert len(windows) == rules.MAX_WINDOWS
    assert windows[-1][1] == day + timedelta(days=2 * (rules.MAX_WINDOWS + 10) - 1)
    # Touching and overlapping windows become one.
    joined = rules.merged(
        [(day, day + timedelta(days=1))], (day + timedelta(days=1), day + timedelta(days=2))
    )
    assert joined == [(day, day + timedelta(days=2))]
    inside = rules.merged(joined, (day + timedelta(hours=5), day + timedelta(hours=6)))
    assert inside == joined
    assert rules.covered(day, joined)
    assert not rules.covered(day + timedelta(days=2), joined)  # the end is not in the window
    assert rules.read_windows({"windows": rules.stored_windows(joined)}) == joined


def test_occurrences_of_a_cron_and_of_an_anchored_interval() -> None:
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    window = (start, start + timedelta(days=3))

    daily = rules.occurrences(CronSchedule("0 9 * * *"), window, 10)
    every = rules.occurrences(
        IntervalSchedule(timedelta(hours=20)), window, 10, anchor=start + timedelta(hours=201)
    )

    assert daily == [start + timedelta(days=d) for d in range(3)]  # 9:00 on the end day: out
    assert every == [start + timedelta(hours=h) for h in (1, 21, 41, 61)]
