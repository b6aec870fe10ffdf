"""``context.logger``: records name their occurrence (attributes and message prefix), through the
beat and worker path on a driven clock and in a plain Celery call of the task."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from celery.utils.log import get_task_logger

from celery_pyncette import Context, Pyncette
from celery_pyncette._task_logger import FALLBACK_LOGGER, OccurrenceLogger, logger_name
from tests.conftest import FakeClock
from tests.unit.test_dispatch_and_outcomes import run, tick

DUE = datetime(2030, 6, 1, 12, 0, 1, tzinfo=timezone.utc)


@pytest.fixture
def records(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at INFO for this module's logger. A Celery worker started earlier in this process
    (the e2e tests) leaves ``celery.task`` not propagating, which would hide the records."""
    monkeypatch.setattr(logging.getLogger("celery.task"), "propagate", True)
    with caplog.at_level(logging.INFO, logger=__name__):
        yield caplog


def mine(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == __name__]


def test_records_carry_the_occurrence_as_attributes_and_in_the_prefix(
    fake_clock: FakeClock, pyncette: Pyncette, records: pytest.LogCaptureFixture
) -> None:
    @pyncette.dynamic_task(name="hello", log_args={"username": "value", "items": "length"})
    def hello(context: Context) -> None:
        context.logger.info("sent %d mails", 3)

    pyncette.schedule_task(
        hello, "bill", schedule="* * * * * *", username="bill", items=[1, 2], password="s3cret"
    )
    fake_clock.advance(seconds=1)
    for message in tick(pyncette):
        run(pyncette, message)

    (record,) = mine(records)
    assert (record.task, record.instance, record.scheduled_at) == ("hello", "bill", DUE)  # type: ignore[attr-defined]
    assert record.log_args == {"username": "bill", "items": 2}  # type: ignore[attr-defined]
    assert record.getMessage() == (
        "[task=hello instance='bill' scheduled_at=2030-06-01T12:00:01+00:00 "
        "args(username='bill', items=len=2)] sent 3 mails"
    )
    assert "s3cret" not in record.getMessage()
    assert record.levelno == logging.INFO
    # the record points at the task's line, not at the adapter
    assert (record.pathname, record.funcName) == (__file__, "hello")


def test_a_plain_celery_call_logs_without_instance_or_scheduled_time(
    pyncette: Pyncette, records: pytest.LogCaptureFixture
) -> None:
    @pyncette.task(interval=timedelta(minutes=1), name="tidy", log_args=["n"])
    def tidy(context: Context) -> None:
        context.logger.warning("tidied")

    pyncette.app.tasks["tidy"].apply(kwargs={"n": 4})

    (record,) = mine(records)
    assert (record.task, record.instance, record.scheduled_at) == ("tidy", None, None)  # type: ignore[attr-defined]
    assert record.log_args == {"n": 4}  # type: ignore[attr-defined]
    assert record.getMessage() == "[task=tidy args(n=4)] tidied"


def test_the_logger_is_celerys_task_logger_of_the_task_module(pyncette: Pyncette) -> None:
    seen: list[OccurrenceLogger] = []

    @pyncette.task(interval=timedelta(minutes=1), name="named.elsewhere")
    def job(context: Context) -> None:
        seen.append(context.logger)
        assert context.logger is context.logger  # one per execution

    pyncette.app.tasks["named.elsewhere"].apply()

    (adapter,) = seen
    assert isinstance(adapter, logging.LoggerAdapter)
    assert adapter.logger is get_task_logger(__name__)
    assert adapter.logger.parent is logging.getLogger("celery.task")


def test_percent_signs_in_names_survive_with_and_without_arguments(
    fake_clock: FakeClock, pyncette: Pyncette, records: pytest.LogCaptureFixture
) -> None:
    @pyncette.dynamic_task(name="pct")
    def pct(context: Context) -> None:
        context.logger.info("100% done")
        context.logger.info("%s of %d", "half", 2)
        context.logger.log(logging.INFO, "direct %s", "call")

    pyncette.schedule_task(pct, "50%off", schedule="* * * * * *")
    fake_clock.advance(seconds=1)
    for message in tick(pyncette):
        run(pyncette, message)

    prefix = "[task=pct instance='50%off' scheduled_at=2030-06-01T12:00:01+00:00] "
    assert [r.getMessage() for r in mine(records)] == [
        prefix + "100% done",
        prefix + "half of 2",
        prefix + "direct call",
    ]
    assert {r.funcName for r in mine(records)} == {"pct"}


def test_the_callers_extra_is_kept_and_wins(
    pyncette: Pyncette, records: pytest.LogCaptureFixture
) -> None:
    @pyncette.task(interval=timedelta(minutes=1), name="extra")
    def extra(context: Context) -> None:
        context.logger.info("one", extra={"request_id": "r1"})
        context.logger.info("two", extra={"instance": "overridden"})

    pyncette.app.tasks["extra"].apply()

    first, second = mine(records)
    assert (first.request_id, first.task) == ("r1", "extra")  # type: ignore[attr-defined]
    assert second.instance == "overridden"  # type: ignore[attr-defined]


def test_a_level_below_the_loggers_is_not_emitted(
    pyncette: Pyncette, records: pytest.LogCaptureFixture
) -> None:
    @pyncette.task(interval=timedelta(minutes=1), name="quiet")
    def quiet(context: Context) -> None:
        context.logger.debug("not shown")
        context.logger.error("shown")

    pyncette.app.tasks["quiet"].apply()

    assert [r.getMessage() for r in mine(records)] == ["[task=quiet] shown"]


def test_an_exception_is_logged_with_its_traceback(
    pyncette: Pyncette, records: pytest.LogCaptureFixture
) -> None:
    @pyncette.task(interval=timedelta(minutes=1), name="oops")
    def oops(context: Context) -> None:
        try:
            raise KeyError("k")
        except KeyError:
            context.logger.exception("lookup failed")

    pyncette.app.tasks["oops"].apply()

    (record,) = mine(records)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
    assert record.getMessage() == "[task=oops] lookup failed"


@pytest.mark.parametrize(
    ("module", "celery_name", "expected"),
    [
        ("proj.tasks", "anything", "proj.tasks"),
        (None, "proj.tasks.cleanup", "proj.tasks"),  # a beat_schedule entry: its Celery name
        (None, "cleanup", "cleanup"),
        (None, "celery.backend_cleanup", FALLBACK_LOGGER),  # Celery reserves "celery"
        ("celery", "x", FALLBACK_LOGGER),
    ],
)
def test_logger_names(module: str | None, celery_name: str, expected: str) -> None:
    assert logger_name(module, celery_name) == expected
