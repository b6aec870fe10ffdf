"""``celery pyncette import --from-pyncette`` against stores the real Pyncette 1.1 wrote.

Each store (SQLite in a temporary file, Redis db 7 under a namespace of its own, PostgreSQL in a
table of its own) is written by the ``pyncette`` package (the ``test`` extra): a cron instance with
a time zone, an interval one whose name holds a ``:``, once-off ones (one overdue), arguments, a
partitioned task and a static one. The import then runs through the CLI, and every instance is
read back from this project's store: timing, arguments, next run (Pyncette's own, or now when it
was overdue) and the partition this project's selector picks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time as systime
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import tomllib
from celery import Celery
from click.testing import CliRunner

from celery_pyncette import Context, Pyncette, TaskState
from celery_pyncette.cli import pyncette as pyncette_group
from celery_pyncette.stores.base import InstanceKey
from tests.support.servers import IN_CI, require_server

# Pyncette 1.1's Redis store loads its scripts with importlib.resources' deprecated read_text.
pytestmark = pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning")

UTC = timezone.utc
#: A Redis database no other test uses; each test removes its own namespace's keys.
REDIS_URL = "redis://127.0.0.1:6379/7"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
OUR_PARTITIONS = 8
PYNCETTE_PARTITIONS = 4
FEEDS = [f"feed-{n}" for n in range(1, 7)]
PAST = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def require_pyncette() -> None:
    try:
        import pyncette  # noqa: F401
    except ImportError:
        message = "the pyncette package is not installed (it is in the test extra)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: these tests must run, not skip)")
        pytest.skip(message)


def pyncette_partition(count: int, name: str) -> int:
    """The partition Pyncette 1.1's default selector picks: SHA-1 of the name scaled to count."""
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).digest()
    return (int.from_bytes(digest, "big") * count) >> 160


def feed_partition(count: int, name: str) -> int:
    """This project's selector for ``proj.poll``: by the feed's number, unlike Pyncette's hash."""
    return int(name.rsplit("-", 1)[1]) % count


# --- the Pyncette side --------------------------------------------------------------------------


@dataclass
class Source:
    """A Pyncette store: its URL for the import, and how the real Pyncette opens it."""

    url: str
    factory: Callable[..., Any]
    config: dict[str, Any]
    options: list[str]


async def write_with_pyncette(source: Source, future_once: datetime) -> dict[str, datetime]:
    """Schedule the instances with the real Pyncette; return its next run for each."""
    from pyncette import Pyncette as PyncetteApp

    app = PyncetteApp(repository_factory=source.factory, **source.config)

    @app.dynamic_task()
    async def remind(context: Any) -> None: ...

    @app.dynamic_task(name="send_report", team="default")
    async def send_report(context: Any) -> None: ...

    @app.partitioned_task(partition_count=PYNCETTE_PARTITIONS)
    async def poll(context: Any) -> None: ...

    @app.task(interval=timedelta(minutes=1))
    async def cleanup(context: Any) -> None: ...

    async with app.create() as ctx:
        await ctx.schedule_task(
            remind, "bill", schedule="30 9 * * 1-5", timezone="Europe/Dublin", username="bill"
        )
        await ctx.schedule_task(remind, "launch", execute_at=future_once, username="ann")
        await ctx.schedule_task(remind, "late", execute_at=PAST, username="joe")
        await ctx.schedule_task(
            send_report, "weekly:ops", interval=timedelta(minutes=30), recipients=["a@b.c"]
        )
        for feed in FEEDS:
            await ctx.schedule_task(
                poll, feed, interval=timedelta(minutes=5), url=f"https://{feed}"
            )
        # A static task's record exists once Pyncette polled it (its runtime does on each tick).
        await ctx._repository.poll_task(datetime.now(UTC), cleanup)
        stored: dict[str, datetime] = {}
        for task, name in [
            (remind, "bill"), (remind, "launch"), (remind, "late"), (send_report, "weekly:ops"),
            *((poll, feed) for feed in FEEDS),
        ]:  # fmt: skip
            state = await ctx.get_task(task, name)
            assert state is not None
            stored[name] = state.scheduled_at.astimezone(UTC)
        return stored


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Source:
    require_pyncette()
    from pyncette.sqlite import sqlite_repository

    path = tmp_path / "pyncette.db"
    return Source(f"sqlite:///{path}", sqlite_repository, {"sqlite_database": str(path)}, [])


@pytest.fixture
def redis_source() -> Iterator[Source]:
    require_pyncette()
    require_server("Redis", "127.0.0.1", 6379)
    import redis
    from pyncette.redis import redis_repository

    namespace = f"imp-{uuid.uuid4().hex[:8]}"
    config = {"redis_url": REDIS_URL, "redis_namespace": namespace}
    yield Source(REDIS_URL, redis_repository, config, ["--pyncette-namespace", namespace])
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"pyncette:{namespace}:*", count=500))
    if keys:  # only this test's keys: the other Redis runs of this file may share the db
        client.delete(*keys)
    client.close()


@pytest.fixture
def postgres_source() -> Iterator[Source]:
    require_pyncette()
    require_server("PostgreSQL", "127.0.0.1", 5432)
    import psycopg
    from pyncette.postgres import postgres_repository

    # Pyncette allows lower-case letters and underscores only.
    table = "pyncette_import_" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])
    config = {"postgres_url": POSTGRES_URL, "postgres_table_name": table}
    yield Source(POSTGRES_URL, postgres_repository, config, ["--pyncette-table", table])
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.server),
        pytest.param("postgres", marks=pytest.mark.server),
    ]
)
def source(request: pytest.FixtureRequest) -> Source:
    found: Source = request.getfixturevalue(f"{request.param}_source")
    return found


# --- this project's side ------------------------------------------------------------------------


@pytest.fixture
def target(app: Celery, pyncette: Pyncette) -> Pyncette:
    """The declared tasks: ``remind`` (found by its function's name), ``proj.reports.send``
    (mapped), ``proj.poll`` (partitioned, its own selector) and a static ``proj.cleanup``."""

    @pyncette.dynamic_task(name="proj.remind")
    def remind(context: Context) -> None: ...

    @pyncette.dynamic_task(name="proj.reports.send", channel="email")
    def send(context: Context) -> None: ...

    @pyncette.partitioned_task(
        partition_count=OUR_PARTITIONS, partition_selector=feed_partition, name="proj.poll"
    )
    def poll(context: Context) -> None: ...

    @pyncette.task(name="proj.cleanup", interval=timedelta(minutes=1))
    def cleanup(context: Context) -> None: ...

    return pyncette


MAPPING = ["--task", "send_report=proj.reports.send", "--task", "poll=proj.poll"]


def invoke(app: Celery, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(pyncette_group, list(args), obj=SimpleNamespace(app=app))
    return result.exit_code, result.stdout, result.stderr


def imported(pyncette: Pyncette) -> dict[str, TaskState]:
    states: dict[str, TaskState] = {}
    for task in ("proj.remind", "proj.reports.send", "proj.poll"):
        page = pyncette.list_task_states(task, limit=1000)
        states.update({state.instance or "": state for state in page.tasks})
    return states


# --- the tests ----------------------------------------------------------------------------------


def test_every_instance_arrives_with_its_timing_args_next_run_and_partition(
    app: Celery, target: Pyncette, source: Source
) -> None:
    launch = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    stored = asyncio.run(write_with_pyncette(source, launch))

    before = target.now()
    code, stdout, stderr = invoke(
        app, "import", "--from-pyncette", source.url, *source.options, *MAPPING
    )
    after = target.now()

    assert code == 0, stderr
    assert f"wrote {3 + 1 + len(FEEDS)} instance(s) of 3 task(s)" in stdout
    assert "static task 'cleanup' not imported" in stderr
    states = imported(target)
    assert set(states) == {"bill", "launch", "late", "weekly:ops", *FEEDS}

    bill = states["bill"]
    assert (bill.task, bill.schedule, bill.timezone) == ("proj.remind", "30 9 * * 1-5",
                                                         "Europe/Dublin")  # fmt: skip
    assert bill.args == {"username": "bill"}
    assert bill.scheduled_at == stored["bill"]
    assert bill.scheduled_at.astimezone(ZoneInfo("Europe/Dublin")).time() == time(9, 30)

    launched = states["launch"]
    assert (launched.execute_at, launched.scheduled_at) == (launch, launch)
    assert launched.args == {"username": "ann"}
    late = states["late"]
    assert late.execute_at == PAST
    assert before <= late.scheduled_at <= after  # overdue in Pyncette: due now here

    weekly = states["weekly:ops"]
    assert weekly.task == "proj.reports.send"
    assert weekly.interval == timedelta(minutes=30)
    assert weekly.scheduled_at == stored["weekly:ops"]
    # Pyncette's defaults were stored with the instance; this task's own defaults fill in the rest.
    assert weekly.args == {"team": "default", "recipients": ["a@b.c"], "channel": "email"}

    for feed in FEEDS:
        state = states[feed]
        assert state.partition == feed_partition(OUR_PARTITIONS, feed)
        assert state.interval == timedelta(minutes=5)
        assert state.args == {"url": f"https://{feed}"}
        assert state.scheduled_at == stored[feed]
        record = target.store.get(InstanceKey("proj.poll", state.partition, feed))
        assert record is not None


def test_a_dry_run_prints_the_table_and_writes_nothing(
    app: Celery, target: Pyncette, source: Source
) -> None:
    asyncio.run(write_with_pyncette(source, datetime.now(UTC) + timedelta(days=1)))

    code, stdout, stderr = invoke(
        app, "import", "--from-pyncette", source.url, *source.options, *MAPPING, "--dry-run"
    )

    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split() == ["SOURCE", "TASK", "INSTANCE", "PARTITION", "SCHEDULE",
                                "NEXT_RUN", "ARGS"]  # fmt: skip
    rows = {line.split()[2]: line.split() for line in lines[1:-1]}
    assert set(rows) == {"bill", "launch", "late", "weekly:ops", *FEEDS}
    for feed in FEEDS:  # Pyncette's partition (its hash of 4) -> this project's selector's (of 8)
        assert rows[feed][:4] == [
            f"poll[{pyncette_partition(PYNCETTE_PARTITIONS, feed)}]",
            "proj.poll",
            feed,
            str(feed_partition(OUR_PARTITIONS, feed)),
        ]
    assert rows["bill"][:4] == ["remind", "proj.remind", "bill", "0"]
    assert (
        lines[-1] == f"would write {3 + 1 + len(FEEDS)} instance(s) of 3 task(s); nothing written"
    )
    assert imported(target) == {}


def test_the_dry_run_as_json_names_each_instance(
    app: Celery, target: Pyncette, sqlite_source: Source
) -> None:
    asyncio.run(write_with_pyncette(sqlite_source, datetime.now(UTC) + timedelta(days=1)))

    code, stdout, stderr = invoke(
        app, "import", "--from-pyncette", sqlite_source.url, *MAPPING, "--dry-run", "--json"
    )

    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["dry_run"] is True
    assert report["static_tasks"] == ["cleanup"]
    rows = {row["instance"]: row for row in report["instances"]}
    assert rows["weekly:ops"]["source"] == "send_report"
    assert rows["weekly:ops"]["schedule"] == "every 0:30:00"
    assert rows["bill"]["schedule"] == "cron '30 9 * * 1-5' (Europe/Dublin)"
    assert rows["feed-2"]["source"].startswith("poll[")
    assert imported(target) == {}


def test_an_undeclared_task_is_an_error_listing_the_known_ones_and_nothing_is_written(
    app: Celery, target: Pyncette, source: Source
) -> None:
    asyncio.run(write_with_pyncette(source, datetime.now(UTC) + timedelta(days=1)))

    code, _, stderr = invoke(
        app, "import", "--from-pyncette", source.url, *source.options, "--task", "poll=proj.poll"
    )

    assert code == 1
    assert "Pyncette task 'send_report' (1 instance)" in stderr
    assert "known dynamic tasks: proj.poll, proj.remind, proj.reports.send" in stderr
    assert "nothing written" in stderr
    assert stderr.count("\n") == 1
    assert imported(target) == {}


def test_a_mapping_to_a_static_task_is_refused(
    app: Celery, target: Pyncette, sqlite_source: Source
) -> None:
    asyncio.run(write_with_pyncette(sqlite_source, datetime.now(UTC) + timedelta(days=1)))

    code, _, stderr = invoke(
        app, "import", "--from-pyncette", sqlite_source.url, *MAPPING,
        "--task", "remind=proj.cleanup",
    )  # fmt: skip

    assert code == 1
    assert "Pyncette task 'remind' (3 instances) mapped to 'proj.cleanup'" in stderr
    assert "'proj.cleanup' is a static task" in stderr
    assert imported(target) == {}


def test_a_name_that_fits_several_declared_tasks_is_an_error_naming_them(
    app: Celery, target: Pyncette, sqlite_source: Source
) -> None:
    @target.dynamic_task(name="other.remind")
    def remind(context: Context) -> None: ...

    asyncio.run(write_with_pyncette(sqlite_source, datetime.now(UTC) + timedelta(days=1)))

    code, _, stderr = invoke(app, "import", "--from-pyncette", sqlite_source.url, *MAPPING)

    assert code == 1
    assert "Pyncette task 'remind' (3 instances)" in stderr
    assert "ambiguous: it names other.remind, proj.remind" in stderr
    assert imported(target) == {}


def test_an_instance_running_here_is_kept_unless_forced(
    app: Celery, target: Pyncette, sqlite_source: Source
) -> None:
    asyncio.run(write_with_pyncette(sqlite_source, datetime.now(UTC) + timedelta(days=1)))
    now = target.now()
    target.schedule_task("proj.remind", "launch", execute_at=now, username="here")
    (claimed,) = target.store.claim_due("proj.remind", 0, now, 10, timedelta(minutes=5), "test")
    assert claimed.key.instance == "launch"  # running here, under a lease

    code, stdout, stderr = invoke(app, "import", "--from-pyncette", sqlite_source.url, *MAPPING)

    assert code == 1
    assert f"wrote {3 + len(FEEDS)} instance(s) of 3 task(s)" in stdout
    assert "not written, running here (--force replaces them): proj.remind/launch" in stderr
    kept = target.get_task_state("proj.remind", "launch")
    assert kept is not None
    assert kept.args == {"username": "here"}

    code, stdout, stderr = invoke(
        app, "import", "--from-pyncette", sqlite_source.url, *MAPPING, "--force"
    )

    assert code == 0, stderr
    state = target.get_task_state("proj.remind", "launch")
    assert state is not None
    assert (state.args, state.locked_until) == ({"username": "ann"}, None)


@pytest.fixture
def local_zone_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is New York (Pyncette reads a naive ``execute_at`` in it)."""
    monkeypatch.setenv("TZ", "America/New_York")
    systime.tzset()
    yield
    monkeypatch.undo()
    systime.tzset()


@pytest.mark.usefixtures("local_zone_new_york")
def test_colons_in_task_names_and_a_naive_execute_at_read_as_pyncette_meant_them(
    app: Celery, target: Pyncette, sqlite_source: Source
) -> None:
    from pyncette import Pyncette as PyncetteApp

    naive = (datetime.now() + timedelta(days=2)).replace(microsecond=0)  # Pyncette: local time

    async def write() -> None:
        source = PyncetteApp(repository_factory=sqlite_source.factory, **sqlite_source.config)

        @source.partitioned_task(name="feeds:", partition_count=PYNCETTE_PARTITIONS)
        async def feeds(context: Any) -> None: ...

        @source.dynamic_task(name="remind:me")
        async def remind(context: Any) -> None: ...

        async with source.create() as ctx:
            await ctx.schedule_task(feeds, ":feed-3", interval=timedelta(hours=1))
            await ctx.schedule_task(remind, "a::b", execute_at=naive)

    asyncio.run(write())

    code, _, stderr = invoke(
        app, "import", "--from-pyncette", sqlite_source.url,
        "--task", "feeds:=proj.poll", "--task", "remind:me=proj.remind",
    )  # fmt: skip

    assert code == 0, stderr
    states = imported(target)
    assert set(states) == {":feed-3", "a::b"}
    assert states[":feed-3"].partition == feed_partition(OUR_PARTITIONS, ":feed-3")
    assert states["a::b"].execute_at == naive.astimezone(UTC)


def test_an_instance_that_cannot_be_converted_stops_the_import_before_any_write(
    app: Celery, target: Pyncette, sqlite_source: Source
) -> None:
    import sqlite3

    asyncio.run(write_with_pyncette(sqlite_source, datetime.now(UTC) + timedelta(days=1)))
    path = sqlite_source.config["sqlite_database"]
    with sqlite3.connect(path) as db:  # a timezone Pyncette accepted that no zone database has
        spec = json.loads(
            db.execute(
                "SELECT task_spec FROM pyncette_tasks WHERE name = 'remind:bill'"
            ).fetchone()[0]
        )
        spec["timezone"] = "Mars/Olympus_Mons"
        db.execute(
            "UPDATE pyncette_tasks SET task_spec = ? WHERE name = 'remind:bill'",
            (json.dumps(spec),),
        )
    db.close()

    code, _, stderr = invoke(app, "import", "--from-pyncette", sqlite_source.url, *MAPPING)

    assert code == 1
    assert "1 Pyncette instance(s) cannot be imported, nothing written" in stderr
    assert "remind:bill: unknown time zone 'Mars/Olympus_Mons'" in stderr
    assert imported(target) == {}


def test_a_missing_sqlite_file_or_table_is_one_line(
    app: Celery, target: Pyncette, tmp_path: Path
) -> None:
    code, _, stderr = invoke(app, "import", "--from-pyncette", f"sqlite:///{tmp_path}/none.db")
    assert code == 1
    assert "no SQLite database at" in stderr
    assert not (tmp_path / "none.db").exists()

    import sqlite3

    sqlite3.connect(tmp_path / "other.db").close()
    code, _, stderr = invoke(app, "import", "--from-pyncette", f"sqlite:///{tmp_path}/other.db")
    assert code == 1
    assert "no table pyncette_tasks" in stderr
    assert stderr.count("\n") == 1


def test_pyncette_options_need_the_pyncette_source(app: Celery, target: Pyncette) -> None:
    code, _, stderr = invoke(app, "import", "--from-beat-schedule", "--dry-run")

    assert code == 2
    assert "--task, --dry-run and --force go with --from-pyncette" in stderr


def test_pyncette_is_a_test_dependency_only() -> None:
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split("[")[0].split("=")[0].split(">")[0].strip().lower() for r in requirements}

    assert "pyncette" not in names(runtime)
    assert [extra for extra, reqs in extras.items() if "pyncette" in names(reqs)] == ["test"]
