"""Idle claim latency of the Redis store with 10,000 and with 1,000,000 stored instances.

An idle claim (nothing due) must cost O(log N): one ZRANGEBYSCORE on the partition's ready index,
no script. This fills two scratch namespaces on one server (pipelined writes in the store's key
layout), measures ``claim_due`` with nothing due alternately on both (so machine noise hits both
alike), prints the medians and their ratio, and deletes everything it wrote.

    .venv/bin/python -m benchmarks.redis_idle_claim [--url redis://127.0.0.1:6379/9]

Needs about 450 MB of Redis memory while it runs. Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import redis

from benchmarks.common import drop_redis_prefix
from celery_pyncette.stores.redis import RedisStore, instance_key, partition_prefix, to_micros

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
TASK = "bench.task"
SPEC = json.dumps({"cron": "*/5 * * * *", "timezone": None}, separators=(",", ":"))
BATCH = 5_000


def fill(client: redis.Redis, namespace: str, count: int) -> None:
    """Store ``count`` instances of one partition, none due at T0 (all within the next day)."""
    prefix = partition_prefix(namespace, TASK, 0)
    first_run = to_micros(T0 + timedelta(hours=1))
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        ready: dict[bytes, int] = {}
        names: dict[bytes, int] = {}
        for n in range(start, min(start + BATCH, count)):
            name = f"user-{n:07d}"
            next_run = first_run + (n * 86_400_000_000) // count
            pipe.hset(
                instance_key(prefix, name),
                mapping={"n": next_run, "s": SPEC, "a": f'{{"user":{n}}}'},
            )
            ready[name.encode()] = next_run
            names[name.encode()] = 0
        pipe.zadd(prefix + b":ready", ready)
        pipe.zadd(prefix + b":names", names)
        pipe.execute()


def idle_claims(store: RedisStore, calls: int) -> list[float]:
    """Seconds per ``claim_due`` call when nothing is due."""
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        claimed = store.claim_due(TASK, 0, T0, 100, timedelta(seconds=30), "bench")
        timings.append(time.perf_counter() - started)
        assert claimed == [], "nothing should be due"
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=250, help="calls per round and size")
    options = parser.parse_args()

    sizes = (10_000, 1_000_000)
    run = uuid.uuid4().hex[:8]
    namespaces = {size: f"bench-{run}-{size}" for size in sizes}
    client = redis.Redis.from_url(options.url, socket_timeout=60)
    stores = {size: RedisStore(options.url, namespace=ns) for size, ns in namespaces.items()}
    try:
        for size, namespace in namespaces.items():
            started = time.perf_counter()
            fill(client, namespace, size)
            stored = stores[size].count_instances(TASK, 0)
            assert stored == size, (stored, size)
            print(f"filled {size:>9,} instances in {time.perf_counter() - started:6.1f} s")
        for store in stores.values():
            store.setup()
            idle_claims(store, 50)  # warm up connections
        timings: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(options.rounds):
            for size in sizes:
                timings[size] += idle_claims(stores[size], options.calls)
        medians = {size: statistics.median(t) for size, t in timings.items()}
        for size in sizes:
            p90 = statistics.quantiles(timings[size], n=10)[-1]
            print(
                f"idle claim_due, {size:>9,} instances: median {medians[size] * 1e6:7.1f} µs, "
                f"p90 {p90 * 1e6:7.1f} µs over {len(timings[size]):,} calls"
            )
        ratio = medians[sizes[1]] / medians[sizes[0]]
        verdict = "within" if abs(ratio - 1) <= 0.30 else "NOT within"
        print(f"ratio 1,000,000 / 10,000: {ratio:.2f} ({verdict} 30 %)")
        return 0 if abs(ratio - 1) <= 0.30 else 1
    finally:
        for store in stores.values():
            store.close()
        for namespace in namespaces.values():
            drop_redis_prefix(options.url, f"{namespace}:")
        client.close()


if __name__ == "__main__":
    sys.exit(main())
