"""``celery pyncette import`` from RedBeat keys in Redis and django-celery-beat tables in SQLite.

The source data is written the way those projects write it (RedBeat's JSON encoding in a hash's
``definition`` field; django-celery-beat's table and column names), then imported, and the
generated module is executed and fed to a Celery app, proving beat would run every entry.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner

from celery_pyncette import Pyncette
from celery_pyncette.cli import pyncette as pyncette_group
from celery_pyncette.schedules import (
    BoundedSchedule,
    CelerySchedule,
    CronSchedule,
    IntervalSchedule,
)
from tests.support.servers import require_server

REDIS_URL = "redis://127.0.0.1:6379/14"
UTC = timezone.utc


def invoke(app: Celery, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.stdout, result.stderr


def load_module(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<imported>", "exec"), namespace)
    return namespace


def beat_definitions(schedule: dict[str, Any], timezone: str = "UTC") -> dict[str, Any]:
    """What beat with ``-S pyncette`` makes of a beat_schedule: name -> (task, schedule, args)."""
    app = Celery("check", broker="memory://", set_as_current=False)
    app.conf.timezone = timezone
    app.conf.beat_schedule = schedule
    definitions = Pyncette(app, url="memory://").beat_schedule_definitions()
    return {
        name: (d.celery_name, d.schedule, list(d.positional), dict(d.args), dict(d.options))
        for name, d in definitions.items()
    }


# --- RedBeat ------------------------------------------------------------------------------------


@pytest.fixture
def redbeat() -> Iterator[tuple[Any, str]]:
    """A Redis client on db 14 and a unique RedBeat key prefix; every key under it is removed."""
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def save_redbeat_entry(client: Any, prefix: str, definition: dict[str, Any]) -> None:
    """As RedBeatSchedulerEntry.save() stores an entry: hash + schedule sorted set."""
    key = prefix + definition["name"]
    client.hset(key, "definition", json.dumps(definition))
    client.hset(key, "meta", json.dumps({"last_run_at": None}))
    client.zadd(prefix + ":schedule", {key: 0})


def test_import_from_redbeat_converts_crontab_and_interval_entries(
    app: Celery, pyncette: Pyncette, redbeat: tuple[Any, str], tmp_path: Path
) -> None:
    client, prefix = redbeat
    crontab_schedule = {
        "__type__": "crontab",
        "minute": "*/15",
        "hour": "8-18",
        "day_of_week": "mon-fri",
        "day_of_month": "*",
        "month_of_year": "*",
    }
    save_redbeat_entry(client, prefix, {
        "name": "office-hours", "task": "proj.tasks.poll", "schedule": crontab_schedule,
        "args": [1, "two"], "kwargs": {"flag": True}, "options": {"queue": "polls"},
        "enabled": True,
    })  # fmt: skip
    save_redbeat_entry(client, prefix, {
        "name": "heartbeat", "task": "proj.tasks.ping",
        "schedule": {"__type__": "interval", "every": 30.0, "relative": False},
        "args": [], "kwargs": {}, "options": {}, "enabled": True,
    })  # fmt: skip
    save_redbeat_entry(client, prefix, {
        "name": "paused", "task": "proj.tasks.ping",
        "schedule": {"__type__": "interval", "every": 5, "relative": True},
        "args": [], "kwargs": {}, "options": {}, "enabled": False,
    })  # fmt: skip
    save_redbeat_entry(client, prefix, {
        "name": "weird", "task": "proj.tasks.ping",
        "schedule": {"__type__": "rrule", "freq": 3, "interval": 1},
        "args": [], "kwargs": {}, "options": {}, "enabled": True,
    })  # fmt: skip
    save_redbeat_entry(client, prefix, {
        "name": "broken-cron", "task": "proj.tasks.ping",
        "schedule": dict(crontab_schedule, minute="75"),
        "args": [], "kwargs": {}, "options": {}, "enabled": True,
    })  # fmt: skip
    output = tmp_path / "imported_schedule.py"

    code, stdout, stderr = invoke(
        app, "import", "--from-redbeat", REDIS_URL, "--redbeat-prefix", prefix, "-o", str(output)
    )

    assert code == 0, stderr
    assert "wrote 3 entries" in stdout
    assert "skipped weird: rrule schedules have no beat_schedule equivalent" in stderr
    assert "skipped broken-cron: invalid crontab" in stderr
    assert "note paused: relative=True is not kept" in stderr
    module = load_module(output.read_text())
    assert set(module["BEAT_SCHEDULE"]) == {"office-hours", "heartbeat"}
    assert set(module["DISABLED_BEAT_SCHEDULE"]) == {"paused"}
    converted = beat_definitions(module["BEAT_SCHEDULE"])
    assert converted["office-hours"] == (
        "proj.tasks.poll", CronSchedule("*/15 8-18 * * 1-5", "UTC"), [1, "two"], {"flag": True},
        {"queue": "polls"},
    )  # fmt: skip
    assert converted["heartbeat"][1] == IntervalSchedule(
        __import__("datetime").timedelta(seconds=30)
    )


def test_import_from_redbeat_as_json_lists_entries_and_skips(
    app: Celery, pyncette: Pyncette, redbeat: tuple[Any, str]
) -> None:
    client, prefix = redbeat
    save_redbeat_entry(client, prefix, {
        "name": "heartbeat", "task": "proj.tasks.ping",
        "schedule": {"__type__": "interval", "every": 30, "relative": False},
        "args": [], "kwargs": {}, "options": {}, "enabled": True,
    })  # fmt: skip
    client.hset(prefix + "garbage", "definition", "{not json")

    code, stdout, _ = invoke(
        app, "import", "--from-redbeat", REDIS_URL, "--redbeat-prefix", prefix, "--json"
    )

    assert code == 0
    report = json.loads(stdout)
    (entry,) = report["entries"]
    assert entry["schedule"] == {"type": "interval", "seconds": 30.0}
    assert entry["pyncette_schedule"] == "every 0:00:30"
    assert [s["name"] for s in report["skipped"]] == ["garbage"]


def test_import_from_an_unreachable_redis_is_one_line(app: Celery, pyncette: Pyncette) -> None:
    pytest.importorskip("redis")

    code, _, stderr = invoke(app, "import", "--from-redbeat", "redis://127.0.0.1:1/0")

    assert code == 1
    assert stderr.startswith("Error: ConnectionError")
    assert stderr.count("\n") == 1


# --- django-celery-beat -------------------------------------------------------------------------

DJANGO_CELERY_BEAT_TABLES = """
CREATE TABLE django_celery_beat_crontabschedule (
    id INTEGER PRIMARY KEY, minute VARCHAR(240), hour VARCHAR(96), day_of_week VARCHAR(64),
    day_of_month VARCHAR(124), month_of_year VARCHAR(64), timezone VARCHAR(63));
CREATE TABLE django_celery_beat_intervalschedule (
    id INTEGER PRIMARY KEY, every INTEGER NOT NULL, period VARCHAR(24) NOT NULL);
CREATE TABLE django_celery_beat_solarschedule (
    id INTEGER PRIMARY KEY, event VARCHAR(24), latitude DECIMAL, longitude DECIMAL);
CREATE TABLE django_celery_beat_clockedschedule (
    id INTEGER PRIMARY KEY, clocked_time DATETIME NOT NULL);
CREATE TABLE django_celery_beat_periodictask (
    id INTEGER PRIMARY KEY, name VARCHAR(200) UNIQUE, task VARCHAR(200),
    interval_id INTEGER REFERENCES django_celery_beat_intervalschedule (id),
    crontab_id INTEGER REFERENCES django_celery_beat_crontabschedule (id),
    solar_id INTEGER REFERENCES django_celery_beat_solarschedule (id),
    clocked_id INTEGER REFERENCES django_celery_beat_clockedschedule (id),
    args TEXT, kwargs TEXT, queue VARCHAR(200), exchange VARCHAR(200), routing_key VARCHAR(200),
    headers TEXT, priority INTEGER, expires DATETIME, expire_seconds INTEGER, one_off BOOL,
    start_time DATETIME, enabled BOOL, last_run_at DATETIME, total_run_count INTEGER,
    date_changed DATETIME, description TEXT);
INSERT INTO django_celery_beat_crontabschedule VALUES
    (1, '0', '9', 'mon-fri', '*', '*', 'Europe/Dublin'),
    (2, '30', '2', '*', '*', '*', 'UTC'),
    (3, '0', '0', '1', '1', '*', 'UTC'),
    (4, '0', '25', '*', '*', '*', 'UTC');
INSERT INTO django_celery_beat_intervalschedule VALUES (1, 10, 'minutes'), (2, 0, 'seconds');
INSERT INTO django_celery_beat_clockedschedule VALUES (1, '2030-01-01 00:00:00');
"""

PERIODIC_TASK = (
    "INSERT INTO django_celery_beat_periodictask (name, task, interval_id, crontab_id, clocked_id,"
    " args, kwargs, queue, headers, priority, expire_seconds, one_off, enabled, start_time)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@pytest.fixture
def django_db(tmp_path: Path) -> str:
    path = tmp_path / "django.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(DJANGO_CELERY_BEAT_TABLES)
        db.executemany(PERIODIC_TASK, [
            ("morning report", "reports.morning", None, 1, None, "[]", '{"team": "ops"}',
             "reports", "{}", 5, 300, 0, 1, None),
            ("nightly cleanup", "maint.cleanup", None, 2, None, '["tmp"]', "{}", None, None,
             None, None, 0, 1, "2030-01-01 00:00:00"),
            ("first monday", "maint.monthly", None, 3, None, "[]", "{}", None, None, None, None,
             0, 1, None),
            ("ten minutes", "sync.pull", 1, None, None, "[]", "{}", "", '{"x-src": "beat"}',
             None, None, 0, 0, None),
            ("zero interval", "sync.pull", 2, None, None, "[]", "{}", None, None, None, None, 0,
             1, None),
            ("bad hour", "sync.pull", None, 4, None, "[]", "{}", None, None, None, None, 0, 1,
             None),
            ("new year", "party.start", None, None, 1, "[]", "{}", None, None, None, None, 1, 1,
             None),
            ("bad args", "sync.pull", 1, None, None, "[1,", "{}", None, None, None, None, 0, 1,
             None),
            ("celery.backend_cleanup", "celery.backend_cleanup", None, 2, None, "[]", "{}",
             None, None, None, 43200, 0, 1, None),
        ])  # fmt: skip
    db.close()
    return f"sqlite:///{path}"


def test_import_from_django_celery_beat_converts_and_reports(
    app: Celery, pyncette: Pyncette, django_db: str
) -> None:
    app.conf.timezone = "UTC"

    code, stdout, stderr = invoke(app, "import", "--from-django-celery-beat", django_db)

    assert code == 0, stderr
    skipped = {line.split(":")[0] for line in stderr.splitlines() if line.startswith("skipped")}
    assert skipped == {
        "skipped zero interval", "skipped bad hour", "skipped new year", "skipped bad args",
    }  # fmt: skip
    module = load_module(stdout)
    assert set(module["DISABLED_BEAT_SCHEDULE"]) == {"ten minutes"}
    converted = beat_definitions(module["BEAT_SCHEDULE"])
    assert set(converted) == {
        "morning report", "nightly cleanup", "first monday", "celery.backend_cleanup",
    }  # fmt: skip
    task, schedule, _, kwargs, options = converted["morning report"]
    assert (task, schedule, kwargs) == (
        "reports.morning", CronSchedule("0 9 * * 1-5", "Europe/Dublin"), {"team": "ops"},
    )  # fmt: skip
    assert options == {"queue": "reports", "priority": 5, "expires": 300}
    assert converted["nightly cleanup"][1:3] == (
        BoundedSchedule(CronSchedule("30 2 * * *", "UTC"), datetime(2030, 1, 1, tzinfo=UTC)),
        ["tmp"],
    )
    # Celery's crontab needs both day fields to match; cron needs either: kept as Celery's.
    assert isinstance(converted["first monday"][1], CelerySchedule)


def test_start_time_expires_and_one_off_are_carried_over(
    app: Celery, pyncette: Pyncette, django_db: str
) -> None:
    app.conf.timezone = "UTC"
    with sqlite3.connect(django_db.removeprefix("sqlite:///")) as db:
        db.executemany(
            "INSERT INTO django_celery_beat_periodictask (name, task, crontab_id, args, kwargs,"
            " one_off, enabled, start_time, expires) VALUES (?, ?, 2, '[]', '{}', ?, 1, ?, ?)",
            [
                ("campaign", "mail.send", 0, "2031-05-01 00:00:00", "2031-06-01 00:00:00"),
                ("ending", "mail.send", 0, None, "2031-06-01 00:00:00+02:00"),
                ("just once", "mail.send", 1, "2031-05-01 00:00:00", None),
                ("once from now", "mail.send", 1, None, None),
                ("already over", "mail.send", 0, None, "2001-01-01 00:00:00"),
            ],
        )
    db.close()

    code, stdout, stderr = invoke(app, "import", "--from-django-celery-beat", django_db)

    assert code == 0, stderr
    assert "skipped already over:" in stderr
    module = load_module(stdout)
    assert "from celery_pyncette.schedules import bounded, zoned" in stdout.splitlines()
    converted = beat_definitions(module["BEAT_SCHEDULE"])
    nightly = CronSchedule("30 2 * * *", "UTC")
    may = datetime(2031, 5, 1, tzinfo=UTC)
    june = datetime(2031, 6, 1, tzinfo=UTC)
    assert converted["campaign"][1] == BoundedSchedule(nightly, may, june)
    assert converted["ending"][1] == BoundedSchedule(nightly, None, june - timedelta(hours=2))
    # A one-off ends at its next occurrence: it runs once (02:30 after its start, or from now).
    assert converted["just once"][1] == BoundedSchedule(
        nightly, may, may.replace(hour=2, minute=30)
    )
    once = converted["once from now"][1]
    assert isinstance(once, BoundedSchedule)
    assert once.start_at is None
    assert once.end_at is not None
    assert once.first_run(once.end_at - timedelta(days=1)) == once.end_at
    assert once.next_after(once.end_at) is None
    assert "note just once: one_off: runs once, at its next occurrence" in stderr


def test_the_generated_module_imports_zoned_from_the_schedules_module(
    app: Celery, pyncette: Pyncette, django_db: str
) -> None:
    app.conf.timezone = "UTC"

    code, stdout, stderr = invoke(app, "import", "--from-django-celery-beat", django_db)

    assert code == 0, stderr
    # (bounded: the fixture's "nightly cleanup" has a start_time)
    assert "from celery_pyncette.schedules import bounded, zoned" in stdout.splitlines()


def test_modules_generated_by_earlier_versions_still_import_zoned() -> None:
    from celery_pyncette import importers, schedules

    assert importers.zoned is schedules.zoned


def test_import_from_django_celery_beat_as_json(
    app: Celery, pyncette: Pyncette, django_db: str
) -> None:
    code, stdout, _ = invoke(app, "import", "--from-django-celery-beat", django_db, "--json")

    assert code == 0
    report = json.loads(stdout)
    entries = {e["name"]: e for e in report["entries"]}
    assert entries["ten minutes"]["schedule"] == {"type": "interval", "seconds": 600.0}
    assert entries["ten minutes"]["enabled"] is False
    assert entries["ten minutes"]["options"] == {"headers": {"x-src": "beat"}}
    reasons = {s["name"]: s["reason"] for s in report["skipped"]}
    assert "clocked" in reasons["new year"]
    assert "interval must be positive" in reasons["zero interval"]


def test_import_from_a_database_without_the_tables_is_one_line(
    app: Celery, pyncette: Pyncette, tmp_path: Path
) -> None:
    code, _, stderr = invoke(
        app, "import", "--from-django-celery-beat", f"sqlite:///{tmp_path}/empty.sqlite3"
    )

    assert code == 1
    assert "no table django_celery_beat_periodictask" in stderr
    assert stderr.count("\n") == 1


def test_import_refuses_to_overwrite_an_output_file(
    app: Celery, pyncette: Pyncette, django_db: str, tmp_path: Path
) -> None:
    target = tmp_path / "schedule.py"
    target.write_text("keep me")

    code, _, stderr = invoke(
        app, "import", "--from-django-celery-beat", django_db, "-o", str(target)
    )

    assert code == 1
    assert "--overwrite" in stderr
    assert target.read_text() == "keep me"
