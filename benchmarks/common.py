"""What every benchmark shares: the servers, scratch names and their clean-up, timing helpers.

Servers default to the local ones the test suite uses; each can be moved with an environment
variable (``BENCH_REDIS_URL``, ``BENCH_POSTGRES_URL``, ``BENCH_REDIS_BROKER_URL``,
``BENCH_RABBITMQ_URL``). Every run writes under scratch names (a Redis key prefix, SQL table
prefix, queue name) and deletes them afterwards, so it can share servers with other work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BROKER_URL = os.environ.get("BENCH_REDIS_BROKER_URL", "redis://127.0.0.1:6379/12")
RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")

BROKERS = {"redis": REDIS_BROKER_URL, "rabbitmq": RABBITMQ_URL}
STORES = ("redis", "postgresql", "sqlite")
#: (store, broker) pairs every figure is measured for.
PAIRS = (("redis", "redis"), ("postgresql", "redis"), ("sqlite", "redis"), ("redis", "rabbitmq"))

STORE_LABEL = {"redis": "Redis", "postgresql": "PostgreSQL", "sqlite": "SQLite"}
BROKER_LABEL = {"redis": "Redis", "rabbitmq": "RabbitMQ"}


def pair_label(store: str, broker: str) -> str:
    return f"{STORE_LABEL[store]} → {BROKER_LABEL[broker]}"


def scratch(prefix: str = "bench") -> str:
    """A fresh name usable as a Redis prefix, an SQL table prefix and a queue name."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Options:
    """How big and how often: ``--quick`` shrinks everything."""

    quick: bool
    repeats: int
    dispatch_sizes: tuple[int, ...]
    idle_sizes: tuple[int, ...]
    idle_partitioned_sizes: tuple[int, ...]
    peer_budget: float
    latency_seconds: float
    single_budget: float
    bulk_size: int
    drain_size: int
    only: set[str] = field(default_factory=set)

    @classmethod
    def make(cls, quick: bool, only: set[str]) -> Options:
        if quick:
            return cls(
                quick=True,
                repeats=1,
                dispatch_sizes=(2_000, 5_000),
                idle_sizes=(1_000, 10_000, 100_000),
                idle_partitioned_sizes=(1_000, 10_000),
                peer_budget=4.0,
                latency_seconds=3.0,
                single_budget=1.0,
                bulk_size=5_000,
                drain_size=1_000,
                only=only,
            )
        return cls(
            quick=False,
            repeats=3,
            dispatch_sizes=(10_000, 100_000),
            idle_sizes=(10_000, 100_000, 1_000_000),
            idle_partitioned_sizes=(10_000, 100_000, 1_000_000),
            peer_budget=12.0,
            latency_seconds=10.0,
            single_budget=3.0,
            bulk_size=20_000,
            drain_size=5_000,
            only=only,
        )

    def wants(self, suite: str) -> bool:
        return not self.only or suite in self.only


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


@contextlib.contextmanager
def temporary_directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def store_url(store: str, directory: Path) -> str:
    """The URL of a store; SQLite lives in ``directory``."""
    if store == "redis":
        return REDIS_URL
    if store == "postgresql":
        return POSTGRES_URL
    if store == "sqlite":
        return f"sqlite:///{directory}/bench.sqlite3"
    raise ValueError(f"unknown store {store!r}; choose from {STORES}")


def drop_namespace(store: str, url: str, namespace: str) -> None:
    """Delete everything celery-pyncette wrote under ``namespace``."""
    if store == "redis":
        drop_redis_prefix(url, f"{namespace}:")
        return
    if store == "sqlite":
        return  # the file is in a temporary directory removed afterwards
    from sqlalchemy import create_engine

    from celery_pyncette.stores.sql._schema import build_schema

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        schema = build_schema(namespace)
        with engine.begin() as connection:
            for table in reversed(schema.tables):
                table.drop(connection, checkfirst=True)
    finally:
        engine.dispose()


def drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=60)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


def delete_queue(broker_url: str, queue: str) -> None:
    """Remove a queue and its messages (and on Redis kombu's binding keys for it)."""
    from kombu import Connection

    if broker_url.startswith("redis"):
        import redis

        # kombu's virtual queue_delete only drops bindings this very channel declared: delete
        # the list (and its priority lists) and the binding sets directly.
        client = redis.Redis.from_url(broker_url, socket_timeout=60)
        try:
            sep = "\x06\x16"
            lists = [queue, *(f"{queue}{sep}{step}" for step in range(1, 10))]
            bindings = [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
            client.delete(*lists, *bindings)
        finally:
            client.close()
        return
    with contextlib.suppress(Exception), Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            channel.exchange_delete(queue)
        channel.close()


def queue_length(broker_url: str, queue: str) -> int:
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            if broker_url.startswith("amqp"):
                return int(channel.queue_declare(queue, passive=True).message_count)
            return int(channel.client.llen(queue))
        finally:
            channel.close()


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB (of this process by default)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
