"""The fast publisher writes what ``app.send_task`` writes, and falls back to it when unverified.

Every case of ``tests/support/publish_oracle.py`` on kombu's memory transport, under each task
protocol and with task-sent events; the same cases run on Redis and RabbitMQ in ``tests/e2e``.
"""

from __future__ import annotations

import logging
from typing import Any

import celery
import pytest
from celery import Celery
from kombu import Connection

from celery_pyncette import _ids as ids
from celery_pyncette._publish import OutgoingMessage, Publisher
from tests.support.publish_oracle import CASES, Case, assert_fast_equals_plain, read, same_task_ids

CONFS = {
    "protocol-2": {},
    "sent-events": {"task_send_sent_event": True},
    "protocol-1": {"task_protocol": 1},
}


#: Every case under every configuration, except timed cases under protocol 1, whose body carries
#: the time the message was built (so two builds never match byte for byte).
COMBINATIONS = [
    pytest.param(case, conf, id=f"{case.name}-{conf_name}")
    for conf_name, conf in CONFS.items()
    for case in CASES
    if not (case.timed and conf.get("task_protocol") == 1)
]


@pytest.mark.parametrize(("case", "conf"), COMBINATIONS)
def test_the_fast_path_writes_what_send_task_writes(
    app: Celery, case: Case, conf: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app.conf.update(conf)

    assert_fast_equals_plain(app, case, app.conf.task_default_queue, monkeypatch)


def test_the_plain_path_writes_what_send_task_writes(
    app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"pyncette": {"v": 1, "lease": "l-1"}}
    options = {"priority": 7, "queue": f"{app.conf.task_default_queue}-q"}
    message = OutgoingMessage("unit.job", {"n": 1}, headers, (1, "a"), options)

    with same_task_ids(monkeypatch):
        with Publisher(app, plain=True) as plain:
            assert plain.publish([message]) == []
        (task_id,) = ids.task_ids(1)  # the id the publisher gave the message
    app.send_task(
        "unit.job", args=(1, "a"), kwargs={"n": 1}, headers=headers, task_id=task_id, **options
    )

    ours, celerys = read(app, options["queue"])
    assert ours == celerys


def sent_with_send_task(app: Celery, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The task names ``app.send_task`` is called with from now on."""
    names: list[str] = []
    real = app.send_task

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        names.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(app, "send_task", counted)
    return names


def test_on_an_unverified_celery_every_message_goes_through_send_task_said_once(
    app: Celery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(celery, "VERSION", celery.VERSION._replace(minor=99))
    monkeypatch.setattr(celery, "__version__", "5.99.0")
    sent = sent_with_send_task(app, monkeypatch)
    messages = [OutgoingMessage("unit.job", {"n": n}, {}) for n in range(3)]

    with caplog.at_level(logging.WARNING, "celery_pyncette.publish"), Publisher(app) as publisher:
        assert publisher.publish(messages) == []
        assert publisher.publish(messages[:1]) == []

    assert sent == ["unit.job"] * 4
    assert [m["body"] for m in read(app, app.conf.task_default_queue)] == [
        b'[[], {"n": 0}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        b'[[], {"n": 1}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        b'[[], {"n": 2}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
        b'[[], {"n": 0}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
    ]
    (record,) = caplog.records
    assert "celery 5.99.0 is outside the releases it was verified on" in record.getMessage()


def test_a_celery_without_what_the_emulation_reads_is_sent_with_send_task(
    app: Celery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(celery.Task, "_get_exec_options")
    sent = sent_with_send_task(app, monkeypatch)

    with caplog.at_level(logging.WARNING, "celery_pyncette.publish"), Publisher(app) as publisher:
        assert publisher.publish([OutgoingMessage("unit.job", {"n": 1}, {})]) == []

    assert sent == ["unit.job"]
    (record,) = caplog.records
    assert "Celery has no celery.Task._get_exec_options" in record.getMessage()


def test_the_verified_celery_uses_the_fast_path_silently(
    app: Celery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sent = sent_with_send_task(app, monkeypatch)

    with caplog.at_level(logging.DEBUG, "celery_pyncette.publish"), Publisher(app) as publisher:
        assert publisher.publish([OutgoingMessage("unit.job", {"n": 1}, {})]) == []

    assert sent == []
    assert caplog.records == []
    assert len(read(app, app.conf.task_default_queue)) == 1


@pytest.mark.parametrize("plain", [False, True], ids=["fast", "plain"])
def test_after_a_fork_the_inherited_connection_is_forgotten_not_closed(
    app: Celery, monkeypatch: pytest.MonkeyPatch, plain: bool
) -> None:
    opened: list[Any] = []  # the connections the publisher opened, and those it released
    released: list[Any] = []
    real_open, real_release = Connection.ensure_connection, Connection.release

    def opening(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        opened.append(connection)
        return real_open(connection, *args, **kwargs)

    def releasing(connection: Connection) -> None:
        released.append(connection)
        real_release(connection)

    monkeypatch.setattr(Connection, "ensure_connection", opening)
    monkeypatch.setattr(Connection, "release", releasing)
    message = OutgoingMessage("unit.job", {"n": 1}, {})
    with Publisher(app, plain=plain) as publisher:
        assert publisher.publish([message]) == []

        publisher.after_fork()
        assert publisher.publish([message]) == []
        assert released == []  # the parent's connection is not the child's to close

    assert len(opened) == 2
    assert opened[0] not in released
    assert opened[1] in released
    assert len(read(app, app.conf.task_default_queue)) == 2
