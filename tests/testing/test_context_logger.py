"""``context.logger`` under the testing kit: every record of every simulated run names its
occurrence, with the nominal ``scheduled_at`` of that run."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from celery_pyncette import Context, Pyncette
from celery_pyncette.testing import simulate, sleep

START = datetime(2026, 10, 31, 12, tzinfo=timezone.utc)


def test_each_simulated_run_logs_with_its_own_occurrence(
    pyncette: Pyncette, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Celery worker started earlier in this process leaves celery.task not propagating.
    monkeypatch.setattr(logging.getLogger("celery.task"), "propagate", True)

    @pyncette.dynamic_task(log_args=["user"])
    def remind(context: Context) -> None:
        context.logger.info("reminding")
        sleep(30)  # beat keeps ticking meanwhile; the record after it still names this run
        context.logger.info("reminded %s", context.args["user"])

    with caplog.at_level(logging.INFO, logger=__name__), simulate(pyncette, start=START) as sim:
        pyncette.schedule_task(remind, "u1", schedule="0 9 * * *", user="ann")
        pyncette.schedule_task(remind, "u2", schedule="0 18 * * *", user="bob")
        sim.advance(timedelta(days=2))
        runs = sim.executions(remind)

    records = [r for r in caplog.records if r.name == __name__]
    assert len(runs) == 4
    assert len(records) == 2 * len(runs)
    expected = sorted(
        (run.instance, run.scheduled_at, message)
        for run in runs
        for message in ("reminding", "reminded")
    )
    got = sorted(
        (r.instance, r.scheduled_at, r.getMessage().rsplit("] ", 1)[1].split()[0])  # type: ignore[attr-defined]
        for r in records
    )
    assert got == expected
    for record in records:
        assert record.task == remind.name  # type: ignore[attr-defined]
        user = {"u1": "ann", "u2": "bob"}[record.instance]  # type: ignore[attr-defined]
        assert record.log_args == {"user": user}  # type: ignore[attr-defined]
        assert record.getMessage().startswith(
            f"[task={remind.name} instance='{record.instance}' "  # type: ignore[attr-defined]
            f"scheduled_at={record.scheduled_at.isoformat()} args(user='{user}')] "  # type: ignore[attr-defined]
        )
