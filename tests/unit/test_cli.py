"""``celery pyncette``: through click's runner, and through the real ``celery`` executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery import Celery
from celery.schedules import crontab
from click.testing import CliRunner

from celery_pyncette import Context, Pyncette
from celery_pyncette import _registry as registry
from celery_pyncette._records import BEATS_TASK
from celery_pyncette.cli import pyncette as pyncette_group
from celery_pyncette.stores.base import InstanceKey
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]


def invoke(app: Celery, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.output


def invoke_split(app: Celery, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hello(pyncette: Pyncette) -> object:
    @pyncette.dynamic_task(name="hello")
    def hello(context: Context) -> None: ...

    return hello


def beat_seen(
    pyncette: Pyncette, owner: str, at: datetime, partitions: dict[str, list[int]]
) -> None:
    registry.record_beat(
        pyncette.store, owner, hostname="host", pid=1, started_at=at, partitions=partitions, now=at
    )


# --- list / show ------------------------------------------------------------------------------


def test_list_shows_tasks_with_instance_counts(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    @pyncette.task(schedule="0 * * * *", name="hourly")
    def hourly(context: Context) -> None: ...

    pyncette.schedule_task(hello, "a", schedule="* * * * *")
    pyncette.schedule_task(hello, "b", schedule="* * * * *")

    code, output = invoke(app, "list", "--json")

    assert code == 0
    rows = {row["task"]: row for row in json.loads(output)}
    assert rows["hello"]["instances"] == 2
    assert rows["hello"]["kind"] == "dynamic"
    assert rows["hourly"]["kind"] == "static"

    code, table = invoke(app, "list")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == ["TASK", "KIND", "SCHEDULE", "INSTANCES", "NEXT_RUN", "ENABLED"]
    # aligned: every row starts its second column where the header does
    column = lines[0].index("KIND")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])


def test_list_marks_beat_schedule_entries_and_their_next_run(
    app: Celery, pyncette: Pyncette
) -> None:
    app.conf.beat_schedule = {"cleanup": {"task": "proj.cleanup", "schedule": 60.0}}

    code, output = invoke(app, "import", "--from-beat-schedule", "--json")
    assert code == 0, output
    (imported,) = json.loads(output)
    assert imported["name"] == "cleanup"
    assert imported["next_run"] is not None

    code, output = invoke(app, "list", "--json")
    (row,) = json.loads(output)
    assert row["source"] == "beat_schedule"
    assert row["celery_task"] == "proj.cleanup"
    assert row["next_run"] == imported["next_run"]


def test_show_lists_a_dynamic_tasks_instances(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_task(hello, "bill", schedule="* * * * *", username="bill")

    code, output = invoke(app, "show", "hello", "--json")

    assert code == 0
    (row,) = json.loads(output)
    assert row["instance"] == "bill"
    assert row["args"] == {"username": "bill"}


def test_show_filters_by_prefix_and_says_when_it_truncated(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    for name in ("user-1", "user-2", "user-3", "admin-1"):
        pyncette.schedule_task(hello, name, interval=timedelta(minutes=5))

    code, output = invoke(app, "show", "hello", "--prefix", "user-", "--json")
    assert code == 0
    assert [row["instance"] for row in json.loads(output)] == ["user-1", "user-2", "user-3"]

    code, stdout, stderr = invoke_split(app, "show", "hello", "--limit", "2")
    assert code == 0
    assert len(stdout.splitlines()) == 3  # header + 2
    assert "first 2 instances" in stderr


def test_show_of_a_missing_instance_is_an_error(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    code, stdout, stderr = invoke_split(app, "show", "hello", "nobody")

    assert code == 1
    assert stdout == ""
    assert stderr.strip() == "Error: no stored state for instance 'nobody' of task 'hello'"


def test_errors_are_one_line_and_a_non_zero_exit(app: Celery, pyncette: Pyncette) -> None:
    code, output = invoke(app, "show", "no-such-task")

    assert code != 0
    assert output.strip().count("\n") == 0
    assert "no-such-task" in output


# --- schedule / unschedule ----------------------------------------------------------------------


def test_schedule_creates_an_instance_with_typed_arguments(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    code, output = invoke(
        app, "schedule", "hello", "bill", "--cron", "0 9 * * *", "--timezone", "Europe/Dublin",
        "--arg", "username=bill", "--arg", "user_id=42", "--arg", 'tags=["a"]', "--json",
    )  # fmt: skip

    assert code == 0, output
    (row,) = json.loads(output)
    assert row["scheduled_at"] == "2030-06-02T08:00:00+00:00"  # 09:00 Irish summer time
    state = pyncette.get_task_state(hello, "bill")
    assert state is not None
    assert dict(state.args) == {"username": "bill", "user_id": 42, "tags": ["a"]}
    assert state.schedule == "0 9 * * *"
    assert state.timezone == "Europe/Dublin"


def test_schedule_once_and_interval(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    code, _ = invoke(app, "schedule", "hello", "once", "--at", "2030-06-01T13:00:00Z")
    assert code == 0
    code, _ = invoke(app, "schedule", "hello", "often", "--interval", "90")
    assert code == 0

    once = pyncette.get_task_state(hello, "once")
    often = pyncette.get_task_state(hello, "often")
    assert once is not None
    assert often is not None
    assert once.scheduled_at == datetime(2030, 6, 1, 13, tzinfo=timezone.utc)
    assert often.scheduled_at == fake_clock.now + timedelta(seconds=90)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "61 * * * *"], "invalid cron expression"),
        (["--interval", "-5"], "interval must be positive"),
        (["--at", "2030-06-01T13:00:00"], "has no UTC offset"),
        (["--cron", "* * * * *", "--timezone", "Mars/Base"], "unknown time zone"),
    ],
)
def test_schedule_rejects_invalid_timing_in_one_line(
    app: Celery, pyncette: Pyncette, hello: object, args: list[str], message: str
) -> None:
    code, _, stderr = invoke_split(app, "schedule", "hello", "x", *args)

    assert code == 1
    assert message in stderr
    assert stderr.count("\n") == 1
    assert pyncette.get_task_state(hello, "x") is None


def test_schedule_takes_bounds_and_jitter(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    code, output = invoke(
        app, "schedule", "hello", "bill", "--cron", "0 9 * * *", "--start-at",
        "2030-07-01T00:00:00+02:00", "--end-at", "2030-07-31T00:00:00Z", "--jitter", "600",
        "--json",
    )  # fmt: skip

    assert code == 0, output
    (row,) = json.loads(output)
    assert row["scheduled_at"] == "2030-07-01T09:00:00+00:00"
    assert row["start_at"] == "2030-06-30T22:00:00+00:00"
    assert row["end_at"] == "2030-07-31T00:00:00+00:00"
    state = pyncette.get_task_state(hello, "bill")
    assert state is not None
    assert state.jitter == timedelta(minutes=10)
    assert state.sends_at is not None
    assert timedelta(0) <= state.sends_at - state.scheduled_at < timedelta(minutes=10)
    code, output = invoke(app, "show", "hello", "bill")
    assert code == 0, output
    assert "from 2030-06-30T22:00:00+00:00 until 2030-07-31T00:00:00+00:00" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start-at", "2030-07-01T00:00:00"], "--start-at '2030-07-01T00:00:00' has no UTC"),
        (["--end-at", "July"], "--end-at 'July' is not an ISO 8601 time"),
        (
            ["--start-at", "2030-07-02T00:00:00Z", "--end-at", "2030-07-01T00:00:00Z"],
            "must be after start_at",
        ),
        (["--jitter", "0"], "jitter must be positive"),
    ],
)
def test_schedule_rejects_bad_bounds_and_jitter_in_one_line(
    app: Celery, pyncette: Pyncette, hello: object, args: list[str], message: str
) -> None:
    code, _, stderr = invoke_split(app, "schedule", "hello", "x", "--cron", "0 9 * * *", *args)

    assert code == 1
    assert message in stderr
    assert stderr.count("\n") == 1
    assert pyncette.get_task_state(hello, "x") is None


def test_schedule_needs_exactly_one_timing(app: Celery, pyncette: Pyncette, hello: object) -> None:
    code, output = invoke(app, "schedule", "hello", "x")
    assert code == 2
    assert "exactly one of --cron, --interval, --at" in output


def test_an_arg_named_like_an_option_is_an_argument(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    # --arg values travel as schedule_task(args=...): any name is an argument, none an option.
    code, output = invoke(
        app, "schedule", "hello", "x", "--interval", "5", "--arg", "force=1", "--arg", "name=Ann"
    )
    assert code == 0, output
    state = pyncette.get_task_state(hello, "x")
    assert state is not None
    assert dict(state.args) == {"force": 1, "name": "Ann"}


def test_unschedule_removes_and_reports_a_missing_instance(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    pyncette.schedule_task(hello, "bill", interval=timedelta(minutes=1))

    code, output = invoke(app, "unschedule", "hello", "bill", "--json")
    assert code == 0
    assert json.loads(output) == [{"task": "hello", "instance": "bill", "removed": True}]
    assert pyncette.get_task_state(hello, "bill") is None

    code, output = invoke(app, "unschedule", "hello", "bill")
    assert code == 1
    assert "has no instance 'bill'" in output

    code, _ = invoke(app, "unschedule", "hello", "bill", "--missing-ok")
    assert code == 0


# --- strikes ------------------------------------------------------------------------------------


def test_strike_list_and_restore(app: Celery, pyncette: Pyncette, hello: object) -> None:
    code, _ = invoke(app, "strike", "hello", "--where", "username", "==", "bill")
    assert code == 0
    code, _ = invoke(app, "strike", "--all-tasks", "--where", "customer_id", "==", "12345")
    assert code == 0

    code, output = invoke(app, "strikes", "--json")
    assert code == 0
    assert sorted(json.loads(output), key=str) == sorted(
        [
            {
                "task": "hello",
                "parameter": "username",
                "operator": "==",
                "value": "bill",
                "type": "string",
                "reason": None,
            },
            {
                "task": None,
                "parameter": "customer_id",
                "operator": "==",
                "value": "12345",
                "type": "string",
                "reason": None,
            },
        ],
        key=str,
    )

    code, _ = invoke(app, "restore", "hello", "--where", "username", "==", "bill")
    assert code == 0
    assert [s.parameter for s in pyncette.strikes()] == ["customer_id"]

    code, output = invoke(app, "restore", "hello", "--where", "username", "==", "bill")
    assert code == 1
    assert "no such strike" in output


def test_strike_of_a_whole_task_and_usage_errors(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    code, output = invoke(app, "strike", "hello")
    assert code == 0, output
    assert [(s.task, s.parameter) for s in pyncette.strikes()] == [("hello", None)]

    assert invoke(app, "strike")[0] == 2
    assert invoke(app, "strike", "--all-tasks")[0] == 2
    code, output = invoke(app, "strike", "hello", "--where", "username", "~", "bill")
    assert code == 1
    assert "operator must be one of" in output


def test_strike_with_a_reason_is_listed_with_it_in_text_and_json(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    code, output = invoke(
        app, "strike", "hello", "--where", "username", "==", "bill", "--reason", "incident 4711"
    )
    assert code == 0, output
    assert "incident 4711" in output
    invoke(app, "strike", "--all-tasks", "--where", "customer_id", "==", "1")

    code, output = invoke(app, "strikes", "--json")
    assert code == 0
    assert {row["value"]: row["reason"] for row in json.loads(output)} == {
        "bill": "incident 4711",
        "1": None,
    }
    lines = invoke(app, "strikes")[1].splitlines()
    assert lines[0].split()[-1] == "REASON"
    reason_at = lines[0].index("REASON")
    assert sorted(line[reason_at:] for line in lines[1:]) == ["-", "incident 4711"]

    code, output = invoke(app, "strike", "hello", "--where", "username", "==", "bill", "--json")
    assert code == 0
    assert json.loads(output)[0]["reason"] is None  # striking again without one clears it
    assert [s.reason for s in pyncette.strikes() if s.value == "bill"] == [None]


def test_strike_refuses_a_malformed_reason_and_writes_nothing(
    app: Celery, pyncette: Pyncette, hello: object
) -> None:
    for reason in ("", "x" * 501, "two\nlines"):
        code, output = invoke(app, "strike", "hello", "--reason", reason)
        assert code == 1, output
        assert "strike reason" in output
    assert pyncette.strikes() == []
    code, output = invoke(app, "restore", "hello", "--reason", "x")
    assert code == 2  # restore takes no reason: a strike is removed by its rule
    assert "--reason" in output


# --- status -------------------------------------------------------------------------------------


def test_status_fails_when_no_beat_is_alive(app: Celery, pyncette: Pyncette) -> None:
    code, output = invoke(app, "status")

    assert code == 1
    assert "UNHEALTHY: no beat is alive" in output


def test_status_reports_beats_partitions_and_the_due_backlog(
    app: Celery, pyncette: Pyncette, hello: object, fake_clock: FakeClock
) -> None:
    for name in ("a", "b", "c"):
        pyncette.schedule_task(hello, name, interval=timedelta(seconds=10))
    pyncette.schedule_task(hello, "later", interval=timedelta(hours=1))
    fake_clock.advance(seconds=30)
    claimed = pyncette.store.claim_due("hello", 0, fake_clock.now, 1, timedelta(seconds=60), "t")
    assert len(claimed) == 1
    beat_seen(pyncette, "beat-1", fake_clock.now, {"hello": [0]})

    code, output = invoke(app, "status", "--json")

    assert code == 0, output
    report = json.loads(output)
    assert report["healthy"] is True
    (beat,) = report["beats"]
    assert beat["beat"] == "beat-1"
    assert beat["state"] == "alive"
    assert beat["partitions"] == {"hello": [0]}
    (backlog,) = report["backlog"]
    assert backlog == {
        "task": "hello",
        "due": 2,
        "running": 1,
        "oldest_due": "2030-06-01T12:00:10+00:00",
        "overdue": 20.0,
    }

    code, table = invoke(app, "status")
    assert code == 0
    assert "status: healthy" in table
    assert "beat-1  alive" in table


def test_status_fails_on_a_stale_beat_until_it_is_forgotten(
    app: Celery, pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    beat_seen(pyncette, "dead", fake_clock.now, {})
    fake_clock.advance(seconds=5)
    beat_seen(pyncette, "alive", fake_clock.now, {})
    fake_clock.advance(seconds=40)
    beat_seen(pyncette, "alive", fake_clock.now, {})

    code, output = invoke(app, "status", "--no-backlog")
    assert code == 1
    assert "beat dead is stale: last report 45s ago" in output

    code, output = invoke(app, "status", "--forget-stale", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["forgotten"] == ["dead"]
    assert [b["beat"] for b in report["beats"]] == ["alive"]
    assert pyncette.store.get(InstanceKey(BEATS_TASK, 0, "dead")) is None


def test_status_warns_about_partitions_no_live_beat_polls(
    app: Celery, pyncette: Pyncette, fake_clock: FakeClock
) -> None:
    @pyncette.partitioned_task(partition_count=4, name="spread")
    def spread(context: Context) -> None: ...

    beat_seen(pyncette, "b", fake_clock.now, {"spread": [0, 1]})

    code, output = invoke(app, "status", "--no-backlog")

    assert code == 0
    assert "warning: task spread partitions [2, 3] is polled by no live beat" in output


# --- migrate / import ---------------------------------------------------------------------------


def test_migrate_reports_the_store(app: Celery, pyncette: Pyncette) -> None:
    code, output = invoke(app, "migrate", "--json")

    assert code == 0
    assert json.loads(output) == [{"store": "memory://", "status": "ready"}]


def test_import_needs_exactly_one_source(app: Celery, pyncette: Pyncette) -> None:
    code, output = invoke(app, "import")
    assert code == 2
    assert "exactly one of" in output


def test_import_from_beat_schedule_keeps_celery_schedules(app: Celery, pyncette: Pyncette) -> None:
    app.conf.timezone = "Europe/Dublin"
    app.conf.beat_schedule = {
        "nightly": {"task": "proj.nightly", "schedule": crontab(minute="30", hour="2")},
    }

    code, output = invoke(app, "import", "--from-beat-schedule")

    assert code == 0, output
    assert "cron '30 2 * * *' (Europe/Dublin)" in output


# --- the real executable ------------------------------------------------------------------------


def run_celery(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_group_is_registered_with_the_celery_executable(tmp_path: Path) -> None:
    env = {"E2E_STORE": f"sqlite:///{tmp_path}/s.sqlite3"}

    result = run_celery("-A", "tests.e2e.proj", "pyncette", "list", "--json", env=env)

    assert result.returncode == 0, result.stderr
    assert "e2e.every_second" in {row["task"] for row in json.loads(result.stdout)}


def test_the_executable_takes_preload_options_and_persists_across_runs(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.sqlite3"
    app = ["-A", "tests.integrations.cli_proj", "pyncette", "--store", store]

    scheduled = run_celery(*app, "schedule", "cli.hello", "ann", "--interval", "60",
                           "--arg", "username=ann", env={})  # fmt: skip
    shown = run_celery(*app, "show", "cli.hello", "--json", env={})
    status = run_celery(*app, "status", "--no-backlog", env={})

    assert scheduled.returncode == 0, scheduled.stderr
    assert [row["args"] for row in json.loads(shown.stdout)] == [{"username": "ann"}]
    assert status.returncode == 1
    assert "no beat is alive" in status.stdout


# --- repartition --------------------------------------------------------------------------------


def test_repartition_moves_instances_and_reports_running_ones(tmp_path: Path) -> None:
    from celery_pyncette._extension import default_partition_selector

    url = f"sqlite:///{tmp_path}/store.sqlite3"
    old_app = Celery("old", broker="memory://", set_as_current=False)
    old = Pyncette(old_app, url=url)

    @old.partitioned_task(partition_count=2, name="spread")
    def spread_v1(context: Context) -> None: ...

    names = [f"customer-{i}" for i in range(12)]
    old.schedule_tasks(spread_v1, {n: {} for n in names}, interval=timedelta(minutes=5))
    busy = names[0]
    old.schedule_task(spread_v1, busy, execute_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
    partition = default_partition_selector(2, busy)
    assert old.store.claim_due("spread", partition, old.now(), 1, timedelta(minutes=5), "w")
    old.close()
    new_app = Celery("new", broker="memory://", set_as_current=False)
    new = Pyncette(new_app, url=url)

    @new.partitioned_task(partition_count=4, name="spread")
    def spread_v2(context: Context) -> None: ...

    try:
        code, stdout, stderr = invoke_split(new_app, "repartition", "spread", "--to", "4", "--json")

        assert code == 1
        (row,) = json.loads(stdout)
        assert row["running"] == 1
        assert row["moved"] == sum(
            default_partition_selector(2, n) != default_partition_selector(4, n) for n in names[1:]
        )
        assert "run this again" in stderr
        stored = {
            r.key.instance: r.key.partition
            for p in range(4)
            for r in new.store.list_instances("spread", p, 100)
        }
        expected = {n: default_partition_selector(4, n) for n in names[1:]}
        assert {n: stored[n] for n in names[1:]} == expected
    finally:
        new.close()
        new_app.close()
        old_app.close()


def test_repartition_moves_a_store_placed_by_the_modulo_selector(tmp_path: Path) -> None:
    from celery_pyncette._extension import default_partition_selector
    from celery_pyncette._partitions import RANGE_SELECTOR, PartitionLayout, stored_layout
    from celery_pyncette.errors import ConfigurationError
    from tests.support.legacy_layout import where, write_legacy_store

    app = Celery("upgraded", broker="memory://", set_as_current=False)
    extension = Pyncette(app, url=f"sqlite:///{tmp_path}/store.sqlite3")

    @extension.partitioned_task(partition_count=4, name="spread")
    def spread(context: Context) -> None: ...

    names = [f"customer-{i}" for i in range(12)]
    now = extension.now()
    placed = write_legacy_store(extension.store, "spread", 4, names, now + timedelta(hours=1), now)
    try:
        with pytest.raises(ConfigurationError, match="pyncette repartition spread --to 4"):
            extension.schedule_task(spread, "new", interval=timedelta(minutes=5))

        code, stdout, stderr = invoke_split(app, "repartition", "spread", "--to", "4", "--json")

        assert code == 0, stderr
        (row,) = json.loads(stdout)
        must_move = sum(placed[n] != default_partition_selector(4, n) for n in names)
        assert must_move > 0
        assert row == {
            "task": "spread",
            "partitions": 4,
            "moved": must_move,
            "kept": len(names) - must_move,
            "running": 0,
            "complete": True,
        }
        assert stored_layout(extension.store, "spread") == PartitionLayout(
            4, selector=RANGE_SELECTOR
        )
        for name in names:
            assert where(extension.store, "spread", name, 4) == [
                default_partition_selector(4, name)
            ]
        extension.schedule_task(spread, "new", interval=timedelta(minutes=5))
    finally:
        extension.close()
        app.close()


def test_repartition_of_a_static_task_is_an_error(app: Celery, pyncette: Pyncette) -> None:
    @pyncette.task(schedule="0 * * * *", name="hourly")
    def hourly(context: Context) -> None: ...

    code, output = invoke(app, "repartition", "hourly", "--to", "4")

    assert code == 1
    assert "static task" in output
