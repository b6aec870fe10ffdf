"""Log lines name the occurrence; arguments appear only where the task marks them loggable."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from celery_pyncette import Context, FailureMode, Pyncette
from celery_pyncette._logs import occurrence, parse_log_args
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import run, tick

DUE = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def test_arguments_are_left_out_unless_marked() -> None:
    line = occurrence("t", "bill", DUE, {"password": "hunter2", "items": [1, 2, 3]})

    assert line == "task=t instance='bill' scheduled_at=2030-01-01T12:00:00+00:00"


def test_marked_arguments_appear_by_value_or_by_length() -> None:
    logged = parse_log_args({"user": "value", "items": "length"})

    line = occurrence("t", None, DUE, {"user": "bill", "items": [1, 2, 3], "token": "x"}, logged)

    assert line.endswith("args(user='bill', items=len=3)")
    assert "token" not in line


@pytest.mark.parametrize("bad", ["user", {"user": "secret"}, [3]])
def test_bad_log_args_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="log_args"):
        parse_log_args(bad)


def test_claim_send_commit_and_failure_are_logged_without_secrets(
    fake_clock: FakeClock, pyncette: Pyncette, caplog: pytest.LogCaptureFixture
) -> None:
    @pyncette.dynamic_task(name="hello", failure_mode=FailureMode.UNLOCK, log_args=["username"])
    def hello(context: Context) -> None:
        if context.args.get("fail"):
            raise RuntimeError("nope")

    pyncette.schedule_task(
        hello, "bill", schedule="* * * * * *", username="bill", password="s3cret"
    )
    pyncette.schedule_task(hello, "ann", schedule="* * * * * *", username="ann", fail=True)
    fake_clock.advance(seconds=1)

    with caplog.at_level(logging.DEBUG, "celery_pyncette"):
        for message in tick(pyncette):
            run(pyncette, message)

    text = caplog.text
    assert "sent task=hello instance='bill'" in text
    assert "committed task=hello instance='bill'" in text
    assert "args(username='bill')" in text
    assert "failed task=hello instance='ann'" in text
    assert "unlocked" in text
    assert "s3cret" not in text


def test_beat_and_worker_record_prometheus_metrics(
    fake_clock: FakeClock, pyncette: Pyncette
) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")  # the [metrics] extra
    from celery_pyncette import metrics

    metrics.install()
    registry = prometheus_client.REGISTRY

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    @pyncette.dynamic_task(name="metered", failure_mode=FailureMode.UNLOCK)
    def metered(context: Context) -> None:
        if context.instance == "bad":
            raise RuntimeError("nope")

    before = {
        "claimed": value("pyncette_claimed_total", task="metered"),
        "sent": value("pyncette_sent_total", task="metered"),
        "commits": value("pyncette_commits_total", task="metered", status="success"),
        "failures": value("pyncette_failures_total", task="metered"),
    }
    pyncette.schedule_task(metered, "good", schedule="* * * * * *")
    pyncette.schedule_task(metered, "bad", schedule="* * * * * *")
    fake_clock.advance(seconds=1)

    for message in tick(pyncette):
        run(pyncette, message)

    assert value("pyncette_claimed_total", task="metered") - before["claimed"] == 2
    assert value("pyncette_sent_total", task="metered") - before["sent"] == 2
    assert (
        value("pyncette_commits_total", task="metered", status="success") - before["commits"] == 1
    )
    assert value("pyncette_failures_total", task="metered") - before["failures"] == 1
