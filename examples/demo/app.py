"""The demo project: a Celery app with celery-pyncette on the embedded defaults.

Store: SQLite (the default ``pyncette_url``, placed in ``.demo/``). Broker: kombu's filesystem
transport, so nothing needs a server.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from celery import Celery

from celery_pyncette import Context, Pyncette

DEMO_DIR = Path(os.environ.get("DEMO_DIR", ".demo")).resolve()
BROKER_DIR = DEMO_DIR / "broker"
BROKER_DIR.mkdir(parents=True, exist_ok=True)

app = Celery("demo", broker="filesystem://")
app.conf.update(
    broker_transport_options={
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(DEMO_DIR / "control"),
        "polling_interval": 0.1,
    },
    beat_scheduler="celery_pyncette.Scheduler",
    pyncette_url=f"sqlite:///{DEMO_DIR / 'schedules.sqlite3'}",
    pyncette_poll_interval=0.5,
    worker_hijack_root_logger=False,
    # Executions print plain lines: stdout is not turned into WARNING log records.
    worker_redirect_stdouts=False,
)
pyncette = Pyncette(app)


def say(context: Context, text: str) -> None:
    due = context.scheduled_at.strftime("%H:%M:%S") if context.scheduled_at else "now"
    late = (
        (datetime.now().astimezone() - context.scheduled_at).total_seconds()
        if context.scheduled_at
        else 0
    )
    print(f"[{due}] {text}  (started {late * 1000:.0f} ms after due)", flush=True)


@pyncette.task(schedule="* * * * * */5")
def every_five_seconds(context: Context) -> None:
    """A cron with a seconds field (the 6th field is seconds)."""
    say(context, "cron  '* * * * * */5'  (6th field = seconds): every 5 seconds")


@pyncette.task(interval=timedelta(seconds=7))
def every_seven_seconds(context: Context) -> None:
    """A fixed interval."""
    say(context, "interval 7s")


@pyncette.dynamic_task()
def greet(context: Context) -> None:
    """A template: instances are scheduled at run time, here by examples/demo/run.py."""
    say(context, f"dynamic instance {context.instance!r}: hello {context.args['username']}")
