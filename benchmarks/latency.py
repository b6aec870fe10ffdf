"""Due → worker-start latency: 1,000 occurrences due per second, a real beat and real workers.

``scatter`` spreads once-off instances evenly, 1,000 per second for a few seconds; ``celery beat
-S pyncette`` (poll interval 1 s) sends them and a small fleet of ``celery worker`` nodes runs
them. By default four ``-P solo`` nodes: on 2 cores, one prefork node's parent process, which
receives and acknowledges every message for its children, cannot take 1,000 Redis-broker
messages a second. And kombu's Redis ack emulation is off, which saves the consumer two Redis
round trips per message (the lease re-sends what a crashed worker held; see docs/worker.md).
The task records its start time, and the latency is start time minus ``scheduled_at``. Beat's
own share (``sent``: the moment Celery's ``before_task_publish`` fired in beat, minus
``scheduled_at``) is reported beside it, so a worker fleet that cannot keep up is told apart
from a slow beat. ``BENCH_NODES``, ``BENCH_POOL``, ``BENCH_WORKERS`` and
``BENCH_ACK_EMULATION`` change the fleet.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BROKERS,
    ROOT,
    delete_queue,
    drop_namespace,
    log,
    scratch,
    store_url,
)
from benchmarks.report import ACKS_OFF

RATE = 1_000
POLL_INTERVAL = 1.0
#: The worker fleet: NODES ``celery worker`` processes, each with POOL x CONCURRENCY.
NODES = int(os.environ.get("BENCH_NODES", "4"))
POOL = os.environ.get("BENCH_POOL", "solo")
CONCURRENCY = int(os.environ.get("BENCH_WORKERS", "1"))
#: "0": kombu's Redis transport without ack emulation (see docs/worker.md); "1": with it.
ACK_EMULATION = os.environ.get("BENCH_ACK_EMULATION", "0")


def launch(
    role: str,
    env: dict[str, str],
    directory: Path,
    node: int = 0,
    pool: str = POOL,
    concurrency: int = CONCURRENCY,
) -> subprocess.Popen[bytes]:
    """A ``celery beat`` or ``celery worker`` process of ``benchmarks.proj``."""
    args = {
        "worker": ["worker", "-P", pool, "-c", str(concurrency), "-Q", env["BENCH_QUEUE"],
                   "-n", f"bench-{node}-{env['BENCH_QUEUE']}@%h", "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        "beat": ["beat", "-S", "pyncette", "-l", "WARNING", "--pidfile=",
                 "-s", str(directory / "unused-schedule")],
    }[role]  # fmt: skip
    log_file = open(directory / f"{role}-{node}.log", "ab")  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "benchmarks.proj", *args],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log_file.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def wait_for(path: Path, timeout: float, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never appeared")
        time.sleep(0.05)


def fleet(broker: str) -> str:
    """The worker fleet, as the report names it."""
    pool = f"-P {POOL}" + (f" -c {CONCURRENCY}" if POOL != "solo" else "")
    acks = f", {ACKS_OFF}" if broker == "redis" and ACK_EMULATION == "0" else ""
    return f"{NODES} x `celery worker {pool}`{acks}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(store: str, broker: str, seconds: float, directory: Path) -> dict[str, Any]:
    from benchmarks.ours import make_app

    namespace = scratch()
    url = store_url(store, directory)
    count = int(RATE * seconds)
    events = directory / f"{namespace}.events"
    ready = directory / f"{namespace}.ready"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_BROKER": BROKERS[broker],
        "BENCH_STORE": url,
        "BENCH_NAMESPACE": namespace,
        "BENCH_QUEUE": namespace,
        "BENCH_EVENTS": str(events),
        "BENCH_READY": str(ready),
        "BENCH_POLL_INTERVAL": str(POLL_INTERVAL),
        "BENCH_ACK_EMULATION": ACK_EMULATION,
    }
    client = make_app(store, url, broker, namespace, namespace)
    from celery_pyncette import Pyncette

    # the client declares the same task as the project
    pyncette: Pyncette = client.pyncette

    @pyncette.dynamic_task(name="bench.latency")
    def latency(context: Any) -> None: ...

    processes: list[subprocess.Popen[bytes]] = []
    try:
        for node in range(NODES):
            processes.append(launch("worker", env, directory, node))
        processes.append(launch("beat", env, directory))
        for node in range(NODES):
            wait_for(Path(f"{ready}.worker-{node}"), 60, processes)
        wait_for(Path(f"{ready}.beat"), 60, processes)
        start = datetime.now(timezone.utc) + timedelta(seconds=2)
        names = [f"at-{n:07d}" for n in range(count)]
        pyncette.scatter(latency, names, over=timedelta(seconds=seconds), start=start)
        deadline = time.monotonic() + seconds + 60
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = events.read_text().splitlines() if events.exists() else []
            if len(lines) >= count:
                break
            time.sleep(0.25)
        rows = [[float(v) for v in line.split()] for line in lines]
        delays = [started - due for started, due, _ in rows]
        sending = [sent - due for _, due, sent in rows if sent]
        if len(delays) < count:
            raise RuntimeError(f"only {len(delays)} of {count} ran; see {directory}/*.log")
        return {
            "p50_ms": percentile(delays, 0.50) * 1000,
            "p99_ms": percentile(delays, 0.99) * 1000,
            "max_ms": max(delays) * 1000,
            "sent_p50_ms": percentile(sending, 0.50) * 1000 if sending else None,
            "sent_p99_ms": percentile(sending, 0.99) * 1000 if sending else None,
            "count": len(delays),
            "poll_interval_ms": POLL_INTERVAL * 1000,
            "fleet": fleet(broker),
        }
    finally:
        for process in processes:
            stop(process)
        pyncette.close()
        client.app.close()
        drop_namespace(store, url, namespace)
        delete_queue(BROKERS[broker], namespace)
        log(f"  latency {store}->{broker}: done")


def repeated(
    pairs: Sequence[tuple[str, str]], seconds: float, repeats: int, directory: Path
) -> dict[str, dict[str, Any]]:
    """:func:`measure` ``repeats`` times for each ``(store, broker)``, in rounds over the pairs
    (a disturbance of the shared machine hits one run of several pairs, not every run of one);
    per pair, the median of each figure and every run's p99 (``p99_runs``). A pair whose runs
    all failed holds the last ``error``."""
    runs: dict[str, list[dict[str, Any]]] = {f"{s}:{b}": [] for s, b in pairs}
    errors: dict[str, str] = {}
    for round_ in range(repeats):
        for store, broker in pairs:
            log(f"latency {store} -> {broker}, run {round_ + 1} of {repeats}")
            try:
                runs[f"{store}:{broker}"].append(measure(store, broker, seconds, directory))
            except Exception as exc:
                log(f"  FAILED: {type(exc).__name__}: {exc}")
                errors[f"{store}:{broker}"] = f"{type(exc).__name__}: {exc}"
    out: dict[str, dict[str, Any]] = {}
    for pair, made in runs.items():
        if not made:
            out[pair] = {"error": errors.get(pair, "no run")}
            continue
        entry = dict(made[0])
        for figure in ("p50_ms", "p99_ms", "max_ms", "sent_p50_ms", "sent_p99_ms"):
            values = [run[figure] for run in made if run.get(figure) is not None]
            entry[figure] = statistics.median(values) if values else None
        entry["p99_runs"] = [run["p99_ms"] for run in made]
        out[pair] = entry
    return out
