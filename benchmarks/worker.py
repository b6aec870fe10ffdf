"""What one execution costs a worker: a plain Celery task against celery-pyncette's, per store.

N messages wait in a Redis-broker queue: for a plain Celery task (``bench.plain``, sent with
``send_task``), or for celery-pyncette's task, sent by a real beat ``Scheduler`` from N due
occurrences on each store. Then one ``celery worker -P solo`` (kombu's Redis ack emulation off, as
in the latency figure) drains the queue; each run appends a line to a file, so the drain is over
when the file holds N lines. Reported: executions per second and the worker's CPU time per
execution (user + system, from ``/proc``; startup excluded). What celery-pyncette adds to a plain
task is its lease check before the run and its commit after it, both store round trips.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchmarks import latency, ours
from benchmarks.common import BROKERS, ROOT, STORES, log

#: The baseline: a plain Celery task, no store.
PLAIN = "plain"
SIDES = (PLAIN, *STORES)
#: Longest one drain may take.
DRAIN_BUDGET = 120.0
_LINE = b"x\n"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _send_plain(d: ours.Deployment, n: int) -> None:
    with d.app.producer_or_acquire() as producer:
        for number in range(n):
            d.app.send_task("bench.plain", kwargs={"user": number}, producer=producer)


def drain(side: str, n: int, directory: Path) -> dict[str, Any]:
    """Queue ``n`` messages of ``side``, then time one solo worker draining them."""
    store = "redis" if side == PLAIN else side
    with ours.deployed(store, "redis", directory) as d:
        if side == PLAIN:
            _send_plain(d, n)
        else:
            ours.fill_due(d, n)
            ours.run_scheduler(d, n)
        events = directory / f"{d.namespace}.events"
        ready = directory / f"{d.namespace}.ready"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_BROKER": BROKERS["redis"],
            "BENCH_STORE": d.url,
            "BENCH_NAMESPACE": d.namespace,
            "BENCH_QUEUE": d.queue,
            "BENCH_EVENTS": str(events),
            "BENCH_READY": str(ready),
            "BENCH_ACK_EMULATION": "0",
        }
        process = latency.launch("worker", env, directory, pool="solo", concurrency=1)
        try:
            latency.wait_for(Path(f"{ready}.worker-0"), 60, [process])
            cpu_before, began = _cpu_seconds(process.pid), time.perf_counter()
            done = 0
            while done < n and time.perf_counter() - began < DRAIN_BUDGET:
                time.sleep(0.02)
                done = events.stat().st_size // len(_LINE) if events.exists() else 0
            elapsed = time.perf_counter() - began
            cpu = _cpu_seconds(process.pid) - cpu_before
        finally:
            latency.stop(process)
    if done < n:
        raise RuntimeError(f"the worker ran {done} of {n} in {DRAIN_BUDGET:.0f} s")
    result = {"rate": n / elapsed, "cpu_us": cpu / n * 1e6}
    log(f"  worker {side}: {result['rate']:,.0f}/s, {result['cpu_us']:,.0f} µs CPU per execution")
    return result


def costs(n: int, repeats: int, directory: Path) -> dict[str, list[dict[str, Any]]]:
    """``repeats`` drains of every side, back to back in each repeat (rotating the order)."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for repeat in range(repeats):
        shift = repeat % len(SIDES)
        for side in SIDES[shift:] + SIDES[:shift]:
            runs[side].append(drain(side, n, directory))
    return runs
