"""The Celery project the end-to-end tests run as real `celery beat` and `celery worker` processes.

Configured from the environment by the test that starts the processes:

* ``E2E_BROKER``, ``E2E_STORE``, ``E2E_NAMESPACE``, ``E2E_QUEUE``: broker URL, store URL and
  namespace, a queue name unique per test;
* ``E2E_EVENTS``: a file each execution appends one JSON line to (the side channel);
* ``E2E_TASKS``: comma-separated names of the static tasks to enable (all others are disabled);
* ``E2E_LEASE``: lease seconds; ``E2E_SLEEP``: seconds the ``slow`` task runs;
* ``E2E_DELIVERY_TIMEOUT``: ``pyncette_delivery_timeout`` seconds (the default when unset);
* ``E2E_HEALTH_PORT``, ``E2E_HEALTH_HOST``: beat's ``GET /healthz`` (off when unset).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from celery import Celery, current_task, signals

from celery_pyncette import (
    Context,
    ExecutionMode,
    FailureMode,
    LeaseLostError,
    Pyncette,
    current_context,
    with_heartbeat,
)
from celery_pyncette._occurrence import occurrence_of

app = Celery("e2e", broker=os.environ.get("E2E_BROKER", "memory://"))
app.conf.update(
    task_default_queue=os.environ.get("E2E_QUEUE", "celery"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    pyncette_url=os.environ.get("E2E_STORE", "memory://"),
    pyncette_namespace=os.environ.get("E2E_NAMESPACE", "pyncette"),
    pyncette_poll_interval=0.2,
    pyncette_lease_duration=float(os.environ.get("E2E_LEASE", "3")),
    pyncette_delivery_timeout=os.environ.get("E2E_DELIVERY_TIMEOUT"),
    pyncette_health_port=os.environ.get("E2E_HEALTH_PORT"),
    pyncette_health_host=os.environ.get("E2E_HEALTH_HOST"),
)
if os.environ.get("E2E_BEAT_SCHEDULE") == "1":
    app.conf.beat_schedule = {
        "plain-every-second": {"task": "e2e.plain", "schedule": 1.0, "kwargs": {"label": "plain"}},
    }
pyncette = Pyncette(app)
ENABLED = set(filter(None, os.environ.get("E2E_TASKS", "").split(",")))


def record(context: Context | None, **extra: object) -> None:
    """Append one execution to the side channel."""
    event = {
        "task": context.task.name if context else None,
        "instance": context.instance if context else None,
        "scheduled_at": context.scheduled_at.isoformat()
        if context and context.scheduled_at
        else None,
        "args": context.args if context else None,
        "pid": os.getpid(),
        "at": time.time(),
        **extra,
    }
    with open(os.environ["E2E_EVENTS"], "a", encoding="utf-8") as events:
        events.write(json.dumps(event) + "\n")


@pyncette.task(name="e2e.every_second", schedule="* * * * * *", enabled="every_second" in ENABLED)
def every_second(context: Context) -> None:
    record(context)


@pyncette.task(
    name="e2e.fail_unlock",
    schedule="* * * * * *",
    failure_mode=FailureMode.UNLOCK,
    enabled="fail_unlock" in ENABLED,
)
def fail_unlock(context: Context) -> None:
    record(context)
    raise RuntimeError("fails on purpose")


@pyncette.task(
    name="e2e.fail_none",
    schedule="* * * * * *",
    failure_mode=FailureMode.NONE,
    enabled="fail_none" in ENABLED,
)
def fail_none(context: Context) -> None:
    assert context.locked_until is not None
    record(context, locked_until=context.locked_until.timestamp())
    raise RuntimeError("fails on purpose")


@pyncette.task(
    name="e2e.fail_commit",
    schedule="* * * * * *",
    failure_mode=FailureMode.COMMIT,
    enabled="fail_commit" in ENABLED,
)
def fail_commit(context: Context) -> None:
    record(context)
    raise RuntimeError("fails on purpose")


@pyncette.task(
    name="e2e.fail_at_most_once",
    schedule="* * * * * *",
    execution_mode=ExecutionMode.AT_MOST_ONCE,
    enabled="fail_at_most_once" in ENABLED,
)
def fail_at_most_once(context: Context) -> None:
    record(context)
    raise RuntimeError("fails on purpose")


@pyncette.task(name="e2e.slow", schedule="* * * * * *", enabled="slow" in ENABLED)
def slow(context: Context) -> None:
    assert context.locked_until is not None
    record(context, phase="start", locked_until=context.locked_until.timestamp())
    time.sleep(float(os.environ.get("E2E_SLEEP", "10")))
    record(context, phase="end")


@pyncette.dynamic_task(name="e2e.hello")
def hello(context: Context) -> None:
    record(context)


@app.task(name="e2e.plain")
def plain(label: str) -> None:
    record(current_context(), label=label)


# --- worker-side features (enabled per test through E2E_TASKS) -----------------------------------

FEATURES = ENABLED


def trace(step: str, context: Context) -> None:
    record(context, step=step)


if "middleware" in FEATURES:

    @pyncette.middleware
    def outer(context: Context, call_next: Callable[[], Any]) -> Any:
        trace("outer-before", context)
        try:
            return call_next()
        finally:
            trace("outer-after", context)

    @pyncette.middleware
    async def inner(context: Context, call_next: Callable[[], Awaitable[Any]]) -> Any:
        trace("inner-before", context)
        if context.task.name == "e2e.mw_fail":
            raise RuntimeError("the middleware fails")
        result = await call_next()
        trace("inner-after", context)
        return result


@pyncette.task(name="e2e.mw", schedule="* * * * * *", enabled="mw" in ENABLED)
async def mw(context: Context) -> None:
    trace("task", context)


@pyncette.task(
    name="e2e.mw_fail",
    schedule="* * * * * *",
    failure_mode=FailureMode.UNLOCK,
    enabled="mw_fail" in ENABLED,
)
def mw_fail(context: Context) -> None:
    trace("task", context)


if "fixtures" in FEATURES:

    @pyncette.fixture(name="first")
    def first_fixture() -> Iterator[str]:
        record(None, fixture="first", step="setup")
        yield "first-value"
        record(None, fixture="first", step="teardown")

    @pyncette.fixture()
    async def second() -> AsyncIterator[str]:
        record(None, fixture="second", step="setup")
        yield "second-value"
        record(None, fixture="second", step="teardown")


@pyncette.task(name="e2e.uses_fixtures", schedule="* * * * * *", enabled="uses_fixtures" in ENABLED)
def uses_fixtures(context: Context) -> None:
    record(context, values=[context.first, context.second])


@pyncette.task(name="e2e.heartbeat", schedule="* * * * * *", enabled="heartbeat" in ENABLED)
@with_heartbeat()
def heartbeat(context: Context) -> None:
    record(context, phase="start")
    time.sleep(float(os.environ.get("E2E_SLEEP", "10")))
    record(context, phase="end", lease_lost=context.lease_lost)


@pyncette.dynamic_task(name="e2e.self_unschedule")
def self_unschedule(context: Context) -> None:
    assert context.instance is not None
    pyncette.unschedule_task(self_unschedule, context.instance)
    try:
        context.heartbeat()
    except LeaseLostError:
        record(context, heartbeat="lost")
    else:
        record(context, heartbeat="kept")


@pyncette.task(
    name="e2e.strikable", schedule="* * * * * *", customer_id=12345, enabled="strikable" in ENABLED
)
def strikable(context: Context) -> None:
    record(context)


@pyncette.task(name="e2e.logs", schedule="* * * * * *", enabled="logs" in ENABLED)
def logs(context: Context) -> None:
    context.logger.warning("logged through context.logger")
    record(context)


@pyncette.dynamic_task(
    name="e2e.limited", concurrency_limit=("customer_id", 1), failure_mode=FailureMode.UNLOCK
)
def limited(context: Context) -> None:
    record(context, phase="start")
    time.sleep(0.5)
    record(context, phase="end")


@pyncette.dynamic_task(name="e2e.expiring", expires=2)
def expiring(context: Context) -> None:
    """Messages that expire 2 s after their occurrence (tests/e2e/test_expires.py)."""
    record(context)


# --- fault tests (tests/faults) -------------------------------------------------------------------
#
# * ``E2E_PARTITIONS``: partition count of the ``e2e.fault_*`` tasks (default 8);
# * ``E2E_CLOCK_OFFSET``: seconds this process's clock runs ahead (negative: behind) of real time.

FAULT_PARTITIONS = int(os.environ.get("E2E_PARTITIONS", "8"))


#: The lease token each message arrived with, by task id: the worker replaces it with the
#: execution's own token before the function runs (``task_prerun`` comes before that).
_SENT_LEASES: dict[str, str | None] = {}


@signals.task_prerun.connect
def _remember_sent_lease(task_id: str = "", task: Any = None, **_: Any) -> None:
    occurrence = occurrence_of(task.request) if task is not None else None
    if occurrence is not None:
        _SENT_LEASES[task_id] = occurrence.lease


def record_claim(context: Context) -> None:
    """One execution, with the lease token of the claim it was sent under (which beat's claim)
    and the token it runs under (the execution's own)."""
    task_id = current_task.request.id if current_task else None
    record(
        context,
        lease=_SENT_LEASES.pop(task_id, None) if task_id else None,
        run_lease=context.occurrence.lease if context.occurrence else None,
    )


#: ``E2E_FAULT_SLEEP``: seconds each ``e2e.fault_alo`` run takes (a backlog that drains slowly).
FAULT_SLEEP = float(os.environ.get("E2E_FAULT_SLEEP", "0"))


@pyncette.partitioned_task(name="e2e.fault_alo", partition_count=FAULT_PARTITIONS)
def fault_alo(context: Context) -> None:
    if FAULT_SLEEP:
        time.sleep(FAULT_SLEEP)
    record_claim(context)


@pyncette.dynamic_task(name="e2e.fault_slow")
def fault_slow(context: Context) -> None:
    """A run that lasts ``E2E_SLEEP`` seconds in this process (each worker may get its own)."""
    record_claim(context)
    time.sleep(float(os.environ.get("E2E_SLEEP", "10")))
    record(context, phase="end")


@pyncette.partitioned_task(
    name="e2e.fault_amo",
    partition_count=FAULT_PARTITIONS,
    execution_mode=ExecutionMode.AT_MOST_ONCE,
)
def fault_amo(context: Context) -> None:
    record_claim(context)


if os.environ.get("E2E_CLOCK_OFFSET"):
    from datetime import datetime, timedelta

    from celery_pyncette import _clock as _clock

    _CLOCK_OFFSET = timedelta(seconds=float(os.environ["E2E_CLOCK_OFFSET"]))
    _real_utcnow = _clock.utcnow

    def _skewed_utcnow() -> datetime:
        return _real_utcnow() + _CLOCK_OFFSET

    _clock.utcnow = _skewed_utcnow


# --- the scheduler's signals --------------------------------------------------------------------
# ``E2E_SIGNALS=1``: every celery-pyncette signal appends one line to the side channel (with the
# process that sent it), and one broken receiver of ``occurrence_sent`` raises every time.

if os.environ.get("E2E_SIGNALS") == "1":
    import sys

    from celery_pyncette import signals as pyncette_signals

    ROLE = "beat" if "beat" in sys.argv else "worker"

    def _record_signal(name: str) -> Callable[..., None]:
        def receiver(sender: Any = None, **arguments: Any) -> None:
            scheduled_at = arguments.get("scheduled_at")
            event = {
                "signal": name,
                "role": ROLE,
                "sender": sender,
                "task": arguments.get("task"),
                "instance": arguments.get("instance"),
                "scheduled_at": scheduled_at.isoformat() if scheduled_at else None,
                "outcome": arguments.get("outcome"),
                "lease": arguments.get("lease"),
                "pid": os.getpid(),
            }
            with open(os.environ["E2E_EVENTS"], "a", encoding="utf-8") as events:
                events.write(json.dumps(event) + "\n")

        return receiver

    for _name in pyncette_signals.__all__:
        getattr(pyncette_signals, _name).connect(_record_signal(_name), weak=False)

    @pyncette_signals.occurrence_sent.connect(weak=False)
    def _broken_receiver(**_: Any) -> None:
        raise RuntimeError("a receiver that raises")
