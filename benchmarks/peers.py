"""The peers, each driven programmatically on the same servers: dispatch rates and idle ticks.

* RedBeat (``redbeat.RedBeatScheduler``): entries written in RedBeat's own Redis layout, all due;
  ``tick()`` loads every due entry, then sends them one ``send_task`` each.
* stock Celery beat (``celery.beat.PersistentScheduler``, a shelve file) and
  sqlalchemy-celery-beat (``DatabaseScheduler`` on PostgreSQL / SQLite): N entries, all due; their
  ``tick()`` sends one entry per call after comparing the whole schedule.
* Pyncette 1.1.0: no broker, runs the task in-process (an ``async`` function doing nothing), so its
  figure is executions per second, not messages.

Every Celery scheduler's ``apply_async`` is counted. A peer that cannot finish within the time
budget is stopped there, and its rate is extrapolated honestly: for RedBeat, whose tick first loads
every due entry, the loading time is measured in full and added to N / (send rate); for the one-
entry-per-tick schedulers and Pyncette, the rate over the budget is reported (their per-send cost
only grows with N, so the extrapolation flatters them). The result says which.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import (
    POSTGRES_URL,
    REDIS_BROKER_URL,
    REDIS_URL,
    delete_queue,
    drop_redis_prefix,
    log,
    median,
    scratch,
)

PEER_TASK = "bench.peer"


class _Budget(BaseException):
    """Raised from a counted send when the time budget is spent (not an Exception: schedulers
    swallow those)."""


class _Counter:
    def __init__(self, budget: float) -> None:
        self.sent = 0
        self.began = time.perf_counter()
        self.first: float | None = None
        self.deadline = self.began + budget

    def count(self) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.sent += 1
        if now > self.deadline:
            raise _Budget


def counting(scheduler_class: type, counter: _Counter) -> type:
    """A subclass of ``scheduler_class`` whose ``apply_async`` counts and enforces the budget."""

    class Counting(scheduler_class):  # type: ignore[misc, valid-type]
        def apply_async(self, *args: Any, **kwargs: Any) -> Any:
            result = super().apply_async(*args, **kwargs)
            counter.count()
            return result

    return Counting


def _result(n: int, counter: _Counter, ended: float, preload: bool) -> dict[str, Any]:
    elapsed = ended - counter.began
    if counter.sent >= n:
        return {
            "rate": n / elapsed,
            "sent": counter.sent,
            "seconds": elapsed,
            "extrapolated": False,
        }
    if counter.sent == 0 or counter.first is None:
        return {"rate": 0.0, "sent": 0, "seconds": elapsed, "extrapolated": True}
    if preload:
        load = counter.first - counter.began
        send_rate = counter.sent / max(ended - counter.first, 1e-9)
        projected = load + n / send_rate
    else:
        projected = n * elapsed / counter.sent
    return {
        "rate": n / projected,
        "sent": counter.sent,
        "seconds": elapsed,
        "extrapolated": True,
        "projected_seconds": projected,
    }


def _app(queue: str, **conf: Any) -> Any:
    from celery import Celery

    app = Celery(f"peer-{queue}", broker=REDIS_BROKER_URL, set_as_current=False)
    app.conf.update(task_default_queue=queue, beat_max_loop_interval=1, **conf)
    return app


def _drive(scheduler: Any, counter: _Counter, n: int, budget_end: float) -> float:
    try:
        while counter.sent < n and time.perf_counter() < budget_end:
            scheduler.tick()
    except _Budget:
        pass
    return time.perf_counter()


# --- RedBeat -------------------------------------------------------------------------------------


def _redbeat_fill(app: Any, prefix: str, n: int, due: bool) -> None:
    import redis
    from celery.schedules import schedule
    from redbeat.decoder import RedBeatJSONEncoder

    client = redis.Redis.from_url(REDIS_URL)
    every = schedule(timedelta(hours=1))
    now = time.time()
    score = now - 1 if due else now + 3600
    meta = json.dumps({"last_run_at": None}, cls=RedBeatJSONEncoder)
    try:
        for start in range(0, n, 2000):
            pipe = client.pipeline(transaction=False)
            scores = {}
            for i in range(start, min(start + 2000, n)):
                key = f"{prefix}entry-{i:07d}"
                definition = {
                    "name": f"entry-{i:07d}",
                    "task": PEER_TASK,
                    "args": [],
                    "kwargs": {"user": i},
                    "options": {},
                    "schedule": every,
                    "enabled": True,
                }
                pipe.hset(key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
                if not due:
                    last = datetime.now(timezone.utc)
                    pipe.hset(
                        key, "meta", json.dumps({"last_run_at": last}, cls=RedBeatJSONEncoder)
                    )
                else:
                    pipe.hset(key, "meta", meta)
                scores[key] = score
            pipe.zadd(f"{prefix}:schedule", scores)
            pipe.execute()
    finally:
        client.close()


def _redbeat(n: int, due: bool) -> tuple[Any, Any, str, str]:
    from redbeat import RedBeatScheduler

    queue = scratch("peer")
    prefix = f"{queue}:"
    app = _app(queue, redbeat_redis_url=REDIS_URL, redbeat_key_prefix=prefix, redbeat_lock_key=None)
    _redbeat_fill(app, prefix, n, due)
    return app, RedBeatScheduler, queue, prefix


def redbeat_dispatch(n: int, budget: float) -> dict[str, Any]:
    app, cls, queue, prefix = _redbeat(n, due=True)
    try:
        counter = _Counter(budget)
        scheduler = counting(cls, counter)(app)
        # RedBeat loads every due entry before its first send: that part runs to completion
        counter.deadline = float("inf")
        original = counter.count

        def count() -> None:
            if counter.first is None:
                counter.deadline = time.perf_counter() + budget
            original()

        counter.count = count  # type: ignore[method-assign]
        ended = _drive(scheduler, counter, n, float("inf"))
        scheduler.close()
        return _result(n, counter, ended, preload=True)
    finally:
        app.close()
        drop_redis_prefix(REDIS_URL, prefix)
        delete_queue(REDIS_BROKER_URL, queue)


def redbeat_idle(n: int, ticks: int) -> float:
    app, cls, _queue, prefix = _redbeat(n, due=False)
    try:
        scheduler = cls(app)
        return _idle_ticks(scheduler.tick, ticks)
    finally:
        app.close()
        drop_redis_prefix(REDIS_URL, prefix)


def _idle_ticks(tick: Callable[[], Any], ticks: int) -> float:
    for _ in range(3):
        tick()
    times = []
    for _ in range(ticks):
        began = time.perf_counter()
        tick()
        times.append(time.perf_counter() - began)
    return median(times) * 1000


# --- stock Celery beat ---------------------------------------------------------------------------


def _stock(n: int, directory: Path, due: bool, counter: _Counter | None) -> tuple[Any, Any, str]:
    from celery.beat import PersistentScheduler

    queue = scratch("peer")
    app = _app(queue)
    app.conf.beat_schedule = {
        f"entry-{i:07d}": {"task": PEER_TASK, "schedule": timedelta(hours=1), "kwargs": {"user": i}}
        for i in range(n)
    }
    cls = counting(PersistentScheduler, counter) if counter else PersistentScheduler
    scheduler = cls(app, schedule_filename=str(directory / f"{queue}-schedule"))
    if due:
        past = app.now() - timedelta(hours=2)
        for entry in scheduler.schedule.values():
            entry.last_run_at = past
    return app, scheduler, queue


def _timed_sends(scheduler: Any, counter: _Counter, n: int, budget: float) -> dict[str, Any]:
    """Tick a one-entry-per-call scheduler for ``budget`` seconds; its send rate."""
    counter.began = time.perf_counter()
    counter.deadline = counter.began + budget
    ended = _drive(scheduler, counter, n, counter.deadline)
    return _result(n, counter, ended, preload=False)


def stock_dispatch(n: int, budget: float, directory: Path) -> dict[str, Any]:
    counter = _Counter(budget)
    app, scheduler, queue = _stock(n, directory, True, counter)
    try:
        return _timed_sends(scheduler, counter, n, budget)
    finally:
        scheduler.close()
        app.close()
        delete_queue(REDIS_BROKER_URL, queue)


def stock_idle(n: int, ticks: int, directory: Path) -> float:
    app, scheduler, _ = _stock(n, directory, False, None)
    try:
        return _idle_ticks(scheduler.tick, ticks)
    finally:
        scheduler.close()
        app.close()


# --- sqlalchemy-celery-beat ----------------------------------------------------------------------


def _sqla(
    store: str, n: int, directory: Path, due: bool, counter: _Counter | None
) -> tuple[Any, Any, str, Callable[[], None]]:
    from sqlalchemy import insert
    from sqlalchemy_celery_beat.models import IntervalSchedule, PeriodicTask
    from sqlalchemy_celery_beat.schedulers import DatabaseScheduler
    from sqlalchemy_celery_beat.session import SessionManager

    queue = scratch("peer")
    if store == "postgresql":
        dburi = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        schema: str | None = queue
    else:
        dburi = f"sqlite:///{directory}/{queue}.sqlite3"
        schema = None
    app = _app(queue, beat_dburi=dburi, beat_schema=schema)
    manager = SessionManager()
    engine, session_factory = manager.create_session(dburi, schema=schema)
    manager.prepare_models(engine, schema=schema)
    now = datetime.now(timezone.utc)
    last = now - timedelta(hours=2) if due else now
    with session_factory() as session:
        interval = IntervalSchedule(every=1, period="hours")
        session.add(interval)
        session.commit()
        interval_id, discriminator = interval.id, interval.discriminator
    with engine.begin() as connection:
        for start in range(0, n, 5000):
            rows = [
                {
                    "name": f"entry-{i:07d}",
                    "task": PEER_TASK,
                    "kwargs": json.dumps({"user": i}),
                    "discriminator": discriminator,
                    "schedule_id": interval_id,
                    "last_run_at": last,
                    "enabled": True,
                }
                for i in range(start, min(start + 5000, n))
            ]
            connection.execute(insert(PeriodicTask), rows)
    cls = counting(DatabaseScheduler, counter) if counter else DatabaseScheduler

    def cleanup() -> None:
        if schema is not None:
            from sqlalchemy import text

            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    scheduler = cls(app=app)
    return app, scheduler, queue, cleanup


def sqla_dispatch(store: str, n: int, budget: float, directory: Path) -> dict[str, Any]:
    counter = _Counter(budget)
    app, scheduler, queue, cleanup = _sqla(store, n, directory, True, counter)
    try:
        return _timed_sends(scheduler, counter, n, budget)
    finally:
        scheduler.sync()
        scheduler._finalize.cancel()
        app.close()
        cleanup()
        delete_queue(REDIS_BROKER_URL, queue)


def sqla_idle(store: str, n: int, ticks: int, directory: Path) -> float:
    app, scheduler, _, cleanup = _sqla(store, n, directory, False, None)
    try:
        return _idle_ticks(scheduler.tick, ticks)
    finally:
        scheduler._finalize.cancel()
        app.close()
        cleanup()


# --- Pyncette 1.1.0 ------------------------------------------------------------------------------


def _pyncette_app(store: str, directory: Path, name: str, partitions: int) -> tuple[Any, Any]:
    from pyncette import Pyncette

    settings: dict[str, Any] = {"batch_size": 100}
    if store == "redis":
        from pyncette.redis import redis_repository

        factory = redis_repository
        settings.update(redis_url=REDIS_URL, redis_namespace=name)
    elif store == "postgresql":
        from pyncette.postgres import postgres_repository

        factory = postgres_repository
        settings.update(postgres_url=POSTGRES_URL, postgres_table_name=name)
    else:
        from pyncette.sqlite import sqlite_repository

        factory = sqlite_repository
        settings.update(sqlite_database=str(directory / f"{name}.sqlite3"))
    app = Pyncette(
        repository_factory=factory, poll_interval=timedelta(milliseconds=100), **settings
    )
    counter = {"done": 0}

    async def job(context: Any) -> None:
        counter["done"] += 1

    if partitions > 1:
        task = app.partitioned_task(name="bench_peer", partition_count=partitions)(job)
    else:
        task = app.dynamic_task(name="bench_peer")(job)
    app.counter = counter  # type: ignore[attr-defined]
    return app, task


async def _pyncette_fill(context: Any, task: Any, n: int, **timing: Any) -> None:
    for start in range(0, n, 50):
        await asyncio.gather(
            *(
                context.schedule_task(task, f"entry-{i:07d}", **timing)
                for i in range(start, min(start + 50, n))
            )
        )


def _pyncette_cleanup(store: str, name: str) -> None:
    if store == "redis":
        drop_redis_prefix(REDIS_URL, f"pyncette:{name}:")
    elif store == "postgresql":
        from sqlalchemy import create_engine, text

        engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as connection:
            connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


def _letters(prefix: str) -> str:
    """A scratch name of lower-case letters only (Pyncette's table names allow nothing else)."""
    return prefix + "".join(random.choices(string.ascii_lowercase, k=12))


def pyncette_dispatch(store: str, n: int, budget: float, directory: Path) -> dict[str, Any]:
    name = _letters("bench_pyncette_")
    app, task = _pyncette_app(store, directory, name, 1)

    async def run() -> dict[str, Any]:
        async with app.create() as context:
            past = datetime.now(timezone.utc) - timedelta(seconds=1)
            await _pyncette_fill(context, task, n, execute_at=past)
            began = time.perf_counter()
            runner = asyncio.create_task(context.run())
            while app.counter["done"] < n and time.perf_counter() - began < budget:
                await asyncio.sleep(0.05)
            ended = time.perf_counter()
            done = app.counter["done"]
            context.shutdown()
            await runner
        elapsed = ended - began
        return {
            "rate": done / elapsed,
            "sent": done,
            "seconds": elapsed,
            "extrapolated": done < n,
        }

    try:
        return asyncio.run(run())
    finally:
        _pyncette_cleanup(store, name)


def rivals(
    store: str, n: int, budget: float, directory: Path, with_pyncette: bool = True
) -> dict[str, Callable[[], dict[str, Any]]]:
    """Calls measuring once the dispatch of each peer a target compares with on ``store``
    (Pyncette unless ``with_pyncette`` is false; and RedBeat on Redis), for runs back to back with
    celery-pyncette's. Each returns the peer's result (``rate``, ``extrapolated``)."""
    calls: dict[str, Callable[[], dict[str, Any]]] = {}
    if with_pyncette:
        calls["pyncette"] = lambda: pyncette_dispatch(store, n, budget, directory)
    if store == "redis":
        calls["redbeat"] = lambda: redbeat_dispatch(n, budget)
    return calls


def pyncette_idle(store: str, n: int, partitions: int, ticks: int, directory: Path) -> float:
    name = _letters("bench_pyncette_")
    app, task = _pyncette_app(store, directory, name, partitions)

    async def run() -> float:
        async with app.create() as context:
            await _pyncette_fill(context, task, n, schedule="0 0 1 1 *")
            tasks = [t for t in app._tasks if t.enabled]
            for _ in range(3):
                await context._tick(tasks)
            times = []
            for _ in range(ticks):
                began = time.perf_counter()
                await context._tick(tasks)
                times.append(time.perf_counter() - began)
            return median(times) * 1000

    try:
        return asyncio.run(run())
    finally:
        _pyncette_cleanup(store, name)


# --- the suite -----------------------------------------------------------------------------------


def run(
    sizes: tuple[int, ...],
    budget: float,
    idle_n: int,
    directory: Path,
) -> dict[str, Any]:
    """Every Celery peer's dispatch at ``sizes`` and idle tick at ``idle_n`` stored, and
    Pyncette's idle tick; a failing peer is noted, not fatal. RedBeat's dispatch and Pyncette's
    are measured back to back with celery-pyncette's instead (see :func:`rivals`).
    """
    results: dict[str, Any] = {"dispatch": {}, "idle": {}}

    def attempt(key: tuple[str, ...], where: dict[str, Any], call: Callable[[], Any]) -> None:
        label = "/".join(key)
        try:
            value = call()
        except Exception as exc:  # a peer failing must not stop the others
            log(f"  {label}: FAILED {type(exc).__name__}: {exc}")
            value = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            log(f"  {label}: {value}")
        where.setdefault(key[0], {})["/".join(key[1:])] = value

    dispatch, idle = results["dispatch"], results["idle"]
    for n in sizes:
        attempt(
            ("stock", "shelve", str(n)), dispatch, lambda n=n: stock_dispatch(n, budget, directory)
        )
        for store in ("postgresql", "sqlite"):
            attempt(
                ("sqlalchemy", store, str(n)),
                dispatch,
                lambda n=n, store=store: sqla_dispatch(store, n, budget, directory),
            )
    ticks = 50
    attempt(("redbeat", "redis", str(idle_n)), idle, lambda: redbeat_idle(idle_n, ticks))
    attempt(("stock", "shelve", str(idle_n)), idle, lambda: stock_idle(idle_n, ticks, directory))
    for store in ("postgresql", "sqlite"):
        attempt(
            ("sqlalchemy", store, str(idle_n)),
            idle,
            lambda store=store: sqla_idle(store, idle_n, ticks, directory),
        )
    for store in ("redis", "postgresql", "sqlite"):
        for partitions in (1, 32):
            attempt(
                ("pyncette", store, f"{idle_n}:{partitions}"),
                idle,
                lambda store=store, partitions=partitions: pyncette_idle(
                    store, idle_n, partitions, ticks, directory
                ),
            )
    return results
