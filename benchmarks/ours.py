"""celery-pyncette's figures: dispatch (and the limit baseline), scheduling rates, idle ticks.

Dispatch runs the real path: a Celery app with ``Pyncette(app)``, the beat ``Scheduler`` and
``tick()`` called in a loop, as ``celery beat -S pyncette`` does, until the due occurrences are
sent. The limit baseline claims the same occurrences from the same store and publishes a
hand-built protocol-2 message per claim with kombu's batch producer (publisher confirms in windows
of one claimed batch on RabbitMQ, as celery-pyncette uses them): no scheduler logic at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BROKERS,
    ROOT,
    delete_queue,
    drop_namespace,
    log,
    queue_length,
    scratch,
    store_url,
)

TASK = "bench.job"
IDLE_TASK = "bench.idle"
IDLE_TASK_32 = "bench.idle32"
BATCH = 100
FILL_CHUNK = 10_000
#: Occurrences sent, untimed, by each side before a dispatch figure is measured.
WARM_UP = 500
#: Longest one dispatch run (ours or the limit) may take; a slower one reports what it sent.
DISPATCH_BUDGET = 60.0


@dataclass
class Deployment:
    """One app on one store namespace and one queue."""

    app: Any
    pyncette: Any
    store: str
    url: str
    broker: str
    namespace: str
    queue: str
    tasks: dict[str, Any]


def make_app(
    store: str,
    url: str,
    broker: str,
    namespace: str,
    queue: str,
    enabled: frozenset[str] | None = None,
    **conf: Any,
) -> Deployment:
    """An app with the benchmark's tasks; ``enabled`` names those beat polls (default: all)."""
    from celery import Celery

    from celery_pyncette import Pyncette

    app = Celery(f"bench-{namespace}", broker=BROKERS[broker], set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        pyncette_url=url,
        pyncette_namespace=namespace,
        pyncette_batch_size=BATCH,
        pyncette_poll_interval=1.0,
        beat_schedule={},
        **conf,
    )
    pyncette = Pyncette(app)
    tasks: dict[str, Any] = {}

    def on(name: str) -> bool:
        return enabled is None or name in enabled

    @pyncette.dynamic_task(name=TASK, enabled=on(TASK))
    def job(context: Any) -> None: ...

    @pyncette.dynamic_task(name=IDLE_TASK, enabled=on(IDLE_TASK))
    def idle(context: Any) -> None: ...

    @pyncette.partitioned_task(name=IDLE_TASK_32, partition_count=32, enabled=on(IDLE_TASK_32))
    def idle32(context: Any) -> None: ...

    tasks.update({TASK: job, IDLE_TASK: idle, IDLE_TASK_32: idle32})
    return Deployment(app, pyncette, store, url, broker, namespace, queue, tasks)


@contextmanager
def deployed(store: str, broker: str, directory: Path, **conf: Any) -> Iterator[Deployment]:
    namespace = scratch()
    url = store_url(store, directory)
    d = make_app(store, url, broker, namespace, namespace, **conf)
    try:
        yield d
    finally:
        d.pyncette.close()
        d.app.close()
        drop_namespace(store, url, namespace)
        delete_queue(BROKERS[broker], namespace)


def fill(d: Deployment, task: str, start: int, count: int, **timing: Any) -> float:
    """Schedule instances ``start .. start+count`` of ``task`` with the bulk API; seconds taken."""
    elapsed = 0.0
    for offset in range(start, start + count, FILL_CHUNK):
        names = {
            f"user-{n:08d}": {"user": n}
            for n in range(offset, min(offset + FILL_CHUNK, start + count))
        }
        began = time.perf_counter()
        locked = d.pyncette.schedule_tasks(d.tasks[task], names, **timing)
        elapsed += time.perf_counter() - began
        assert not locked, locked
    return elapsed


def fill_due(d: Deployment, count: int) -> float:
    """``count`` once-off occurrences of the dispatch task, all due now; bulk seconds taken."""
    return fill(d, TASK, 0, count, execute_at=datetime.now(timezone.utc) - timedelta(seconds=1))


# --- dispatch --------------------------------------------------------------------------------


def started_scheduler(d: Deployment) -> Any:
    """A real beat ``Scheduler`` (as ``celery beat -S pyncette`` builds it) that has ticked once
    with nothing due, so its one-time set-up (partition checks, its record in the store) is done
    before its dispatch is timed, as the limit connects before its clock starts."""
    from celery_pyncette.beat import Scheduler

    scheduler = Scheduler(d.app)
    scheduler.tick()
    return scheduler


def run_scheduler(d: Deployment, expected: int, scheduler: Any = None) -> float:
    """Tick a real beat Scheduler (``scheduler``, or a fresh one) until nothing is left;
    occurrences sent per second."""
    from celery_pyncette.beat import Scheduler

    if scheduler is None:
        scheduler = Scheduler(d.app)
    try:
        began = time.perf_counter()
        while scheduler.tick() <= 0 and time.perf_counter() - began < DISPATCH_BUDGET:
            pass
        elapsed = time.perf_counter() - began
    finally:
        dispatcher = getattr(scheduler, "_dispatcher", None)
        publisher = getattr(dispatcher, "publisher", None)
        if publisher is not None and hasattr(publisher, "close"):
            publisher.close()
        scheduler.close()
    sent = queue_length(BROKERS[d.broker], d.queue)
    if sent != expected and elapsed < DISPATCH_BUDGET:
        raise RuntimeError(f"scheduler sent {sent} of {expected} occurrences")
    if sent != expected:
        log(f"  (stopped after {elapsed:.0f} s with {sent:,} of {expected:,} sent)")
    return sent / elapsed


class _Acks:
    """Publisher-confirm counting for the limit baseline."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: set[int] = set()
        self.nacked = 0

    def on_ack(self, tag: int, multiple: bool) -> None:
        self.pending -= {t for t in self.pending if t <= tag} if multiple else {tag}

    def on_nack(self, tag: int, multiple: bool) -> None:
        before = len(self.pending)
        self.on_ack(tag, multiple)
        self.nacked += before - len(self.pending)


def run_limit(d: Deployment, expected: int) -> float:
    """Claim batches from the store and publish each with kombu's batch producer."""
    from kombu import Connection, Exchange, Producer, Queue

    store = d.pyncette.store
    amqp = d.broker == "rabbitmq"
    connection = Connection(BROKERS[d.broker])
    connection.connect()
    channel = connection.channel()
    acks = _Acks()
    if amqp:
        channel.events["basic_ack"].add(acks.on_ack)
        channel.events["basic_nack"].add(acks.on_nack)
        channel.confirm_select()
    producer = Producer(channel, auto_declare=False)
    producer.maybe_declare(Queue(d.queue, Exchange(d.queue), d.queue))
    lease = timedelta(seconds=600)
    origin = f"bench@{uuid.uuid4().hex[:6]}"
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    sent = 0
    try:
        began = time.perf_counter()
        while time.perf_counter() - began < DISPATCH_BUDGET:
            now = datetime.now(timezone.utc)
            claimed = store.claim_due(TASK, 0, now, BATCH, lease, "limit")
            if not claimed:
                break
            with producer.batch(max_size=4 * BATCH):
                for record in claimed:
                    task_id = str(uuid.uuid4())
                    headers = {
                        "lang": "py",
                        "task": TASK,
                        "id": task_id,
                        "shadow": None,
                        "eta": None,
                        "expires": None,
                        "group": None,
                        "group_index": None,
                        "retries": 0,
                        "timelimit": [None, None],
                        "root_id": task_id,
                        "parent_id": None,
                        "argsrepr": "()",
                        "kwargsrepr": repr(record.args),
                        "origin": origin,
                        "ignore_result": False,
                        "replaced_task_nesting": 0,
                        "stamped_headers": None,
                        "stamps": {},
                        # the same header celery-pyncette sends (see occurrence.py)
                        "pyncette": {
                            "v": 1,
                            "task": TASK,
                            "instance": record.key.instance,
                            "partition": record.key.partition,
                            "scheduled_at": record.next_run.isoformat(),
                            "mode": "at_least_once",
                            "lease": record.lease,
                            "locked_until": record.locked_until.isoformat()
                            if record.locked_until
                            else None,
                            "spec": dict(record.spec),
                            "slot": None,
                        },
                    }
                    if amqp:
                        acks.pending.add(acks.next_tag)
                        acks.next_tag += 1
                    producer.publish(
                        ((), dict(record.args), embed),
                        exchange="",
                        routing_key=d.queue,
                        headers=headers,
                        correlation_id=task_id,
                        reply_to="",
                        serializer="json",
                        delivery_mode=2,
                    )
            while acks.pending:
                connection.drain_events(timeout=10)
            sent += len(claimed)
        elapsed = time.perf_counter() - began
    finally:
        channel.close()
        connection.release()
    if (sent != expected and elapsed < DISPATCH_BUDGET) or acks.nacked:
        raise RuntimeError(f"limit sent {sent} of {expected} ({acks.nacked} nacked)")
    if sent != expected:
        log(f"  (stopped after {elapsed:.0f} s with {sent:,} of {expected:,} sent)")
    return sent / elapsed


def dispatch(
    store: str,
    broker: str,
    n: int,
    repeats: int,
    directory: Path,
    peers: Mapping[str, Callable[[], Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """``repeats`` runs each of our dispatch, the limit's and each of ``peers`` (a name and a
    call returning its result: ``rate``, ``extrapolated``), back to back in every repeat; and the
    bulk fill rates. ``extrapolated`` names the peers with a rate extrapolated from a budget."""
    rates: dict[str, list[float]] = {"ours": [], "limit": []}
    rates.update({name: [] for name in peers or {}})
    extrapolated: set[str] = set()
    bulk: list[float] = []
    # an untimed round first: connections, scripts and code paths warm for both alike
    for run in (run_scheduler, run_limit):
        with deployed(store, broker, directory) as d:
            fill_due(d, WARM_UP)
            run(d, WARM_UP)
    sides = list(rates)
    for repeat in range(repeats):
        # rotate which goes first, so drift on a shared machine hits every side alike
        for which in sides[repeat % len(sides) :] + sides[: repeat % len(sides)]:
            if which == "ours" or which == "limit":
                with deployed(store, broker, directory) as d:
                    scheduler = started_scheduler(d) if which == "ours" else None
                    bulk.append(n / fill_due(d, n))
                    rate = run_limit(d, n) if which == "limit" else run_scheduler(d, n, scheduler)
                    rates[which].append(rate)
            else:
                result = (peers or {})[which]()
                rates[which].append(float(result["rate"]))
                if result.get("extrapolated"):
                    extrapolated.add(which)
            log(f"  dispatch {store}->{broker} n={n:,} {which}: {rates[which][-1]:,.0f}/s")
    return {**rates, "bulk_fill": bulk, "extrapolated": sorted(extrapolated)}


# --- scheduling rates -------------------------------------------------------------------------


def schedule_rates(
    store: str, budget: float, bulk_size: int, repeats: int, directory: Path
) -> dict[str, Any]:
    """``schedule_task`` one at a time for ``budget`` seconds; ``schedule_tasks`` in bulk, with a
    cron (each instance's first run is computed) and once-off (``execute_at``) instances."""
    single: list[float] = []
    bulk: list[float] = []
    bulk_once: list[float] = []
    with deployed(store, "redis", directory) as d:
        job = d.tasks[TASK]
        for repeat in range(repeats):
            count = 0
            began = time.perf_counter()
            while time.perf_counter() - began < budget:
                d.pyncette.schedule_task(
                    job, f"single-{repeat}-{count}", schedule="0 9 * * 1-5", user=count
                )
                count += 1
            single.append(count / (time.perf_counter() - began))
            seconds = fill(d, TASK, (repeat + 1) * 10_000_000, bulk_size, schedule="0 9 * * 1-5")
            bulk.append(bulk_size / seconds)
            at = datetime.now(timezone.utc) + timedelta(days=30)
            seconds = fill(d, TASK, (repeat + 1) * 10_000_000 + 5_000_000, bulk_size, execute_at=at)
            bulk_once.append(bulk_size / seconds)
            log(
                f"  schedule {store}: single {single[-1]:,.0f}/s, bulk {bulk[-1]:,.0f}/s (cron), "
                f"{bulk_once[-1]:,.0f}/s (once-off)"
            )
    return {"single": single, "bulk": bulk, "bulk_once": bulk_once}


# --- idle ticks and RSS (in a fresh beat process) -------------------------------------------------


def probe(d: Deployment, partitions: int, rounds: int, ticks: int) -> dict[str, Any]:
    """Idle tick times and RSS of a fresh beat process on ``d``'s store (nothing is due)."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.probe",
        "--store",
        d.url,
        "--namespace",
        d.namespace,
        "--broker",
        d.broker,
        "--partitions",
        str(partitions),
        "--rounds",
        str(rounds),
        "--ticks",
        str(ticks),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"probe failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def idle(
    store: str,
    sizes: tuple[int, ...],
    partitioned_sizes: tuple[int, ...],
    repeats: int,
    directory: Path,
) -> dict[str, Any]:
    """Fill up to each size in turn (bulk API, never due) and probe a fresh beat at each.

    The smallest size of each task also stays filled in a reference namespace, which is probed
    around every bigger size (reference, bigger, bigger, reference; the quieter probe of each
    counts): ``reference_tick_ms`` is the smallest size's tick measured beside the bigger one, so
    their ratio compares the sizes and not the machine's drift between the fills.
    """
    rows: dict[str, Any] = {}
    # once-offs a year ahead: stored, never due during the run (and cheap to compute in bulk)
    not_due = {"execute_at": datetime.now(timezone.utc) + timedelta(days=365)}
    shapes = ((IDLE_TASK, sizes, 1), (IDLE_TASK_32, partitioned_sizes, 32))
    rounds = 2 * repeats + 1
    with deployed(store, "redis", directory) as d, deployed(store, "redis", directory) as reference:
        for task, wanted, _partitions in shapes:
            if wanted:
                fill(reference, task, 0, min(wanted), **not_due)
        stored = {IDLE_TASK: 0, IDLE_TASK_32: 0}
        for size in sorted(set(sizes) | set(partitioned_sizes)):
            for task, wanted, partitions in shapes:
                if size not in wanted:
                    continue
                seconds = fill(d, task, stored[task], size - stored[task], **not_due)
                rate = (size - stored[task]) / seconds
                stored[task] = size
                row: dict[str, Any] = {"fill_rate": rate}
                if size == min(wanted):
                    row.update(probe(d, partitions, rounds, 200))
                else:
                    # ABBA: a drift (the server still writing the fill out, say) hits both alike
                    order = (reference, d, d, reference)
                    probes = [(x, probe(x, partitions, rounds, 200)) for x in order]
                    big = min((p for x, p in probes if x is d), key=lambda p: p["tick_ms"])
                    small = min(p["tick_ms"] for x, p in probes if x is reference)
                    row.update(big, reference_tick_ms=small)
                rows[f"{partitions}:{size}"] = row
                beside = (
                    f" ({row['reference_tick_ms']:.2f} ms at {min(wanted):,} beside it)"
                    if "reference_tick_ms" in row
                    else ""
                )
                log(
                    f"  idle {store} {size:,} stored, {partitions} partition(s): "
                    f"tick {row['tick_ms']:.2f} ms{beside}, RSS {row['rss_mb']:.1f} MB "
                    f"(filled at {rate:,.0f}/s)"
                )
    return rows
