"""The Celery project of the latency benchmark: a real ``celery beat`` and ``celery worker``.

Configured from the environment by ``benchmarks/latency.py`` and ``benchmarks/worker.py``:
``BENCH_BROKER``, ``BENCH_STORE``, ``BENCH_NAMESPACE``, ``BENCH_QUEUE``, ``BENCH_EVENTS`` (a file
each execution appends a line to: ``<start time> <scheduled_at> <sent at>`` for the latency task)
and ``BENCH_READY`` (a file each process touches once it is up).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from celery import Celery, current_task
from celery.signals import beat_init, before_task_publish, worker_ready

from celery_pyncette import Context, Pyncette

app = Celery("bench", broker=os.environ.get("BENCH_BROKER", "memory://"))
app.conf.update(
    task_default_queue=os.environ.get("BENCH_QUEUE", "celery"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=16,
    broker_transport_options=(
        {"ack_emulation": False} if os.environ.get("BENCH_ACK_EMULATION") == "0" else {}
    ),
    pyncette_url=os.environ.get("BENCH_STORE", "memory://"),
    pyncette_namespace=os.environ.get("BENCH_NAMESPACE", "pyncette"),
    pyncette_poll_interval=float(os.environ.get("BENCH_POLL_INTERVAL", "1.0")),
)
pyncette = Pyncette(app)
_lock = threading.Lock()
_events = Path(os.environ.get("BENCH_EVENTS", os.devnull))


def _append(line: str) -> None:
    with _lock, _events.open("a") as events:
        events.write(line)


@pyncette.dynamic_task(name="bench.latency")
def latency(context: Context) -> None:
    started = time.time()
    assert context.scheduled_at is not None
    sent = getattr(current_task.request, "bench_sent_at", None) or 0.0
    _append(f"{started} {context.scheduled_at.timestamp()} {sent}\n")


@pyncette.dynamic_task(name="bench.job")
def job(context: Context) -> None:
    """The task ``benchmarks.ours`` schedules: one line per run."""
    _append("x\n")


@app.task(name="bench.plain")
def plain(**_: Any) -> None:
    """A plain Celery task, the baseline of a worker's cost per execution."""
    _append("x\n")


@before_task_publish.connect(weak=False)
def stamp(headers: dict[str, Any], **_: Any) -> None:
    """Beat's side of the latency: when the message left (the publisher fires Celery's signals)."""
    headers["bench_sent_at"] = time.time()


def _ready(role: str, **_: Any) -> None:
    marker = os.environ.get("BENCH_READY")
    if marker:
        Path(f"{marker}.{role}").touch()


worker_ready.connect(
    lambda sender=None, **kw: _ready(f"worker-{sender.hostname.split('-')[1]}"), weak=False
)
beat_init.connect(lambda **kw: _ready("beat"), weak=False)
