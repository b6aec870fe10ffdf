"""OpenTelemetry through real ``celery beat`` and ``celery worker`` processes.

Both processes load :mod:`tests.e2e.traced`, which exports every finished span to a JSON-lines
file; the tests read the spans of both processes back and check the trace each run is in:

* tracing alone: beat's claim span → its send span → the worker's execution span, with beat
  on either publish path (the batched factory one, the plain ``send_task`` one);
* with ``opentelemetry-instrumentation-celery`` in beat and worker: claim → send →
  ``apply_async`` → ``run`` → execution, for a pyncette task; a plain Celery task's execution
  span (made in a signal receiver) is parented on the context its message carries
  (``apply_async``), beside the instrumentation's run span.

Either way every parent is in the file, each run has one execution span, and each span of a
chain is in the same trace.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_pyncette import Pyncette
from tests.e2e.conftest import StoreConfig
from tests.e2e.harness import Deployment, wait_until

pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.instrumentation.celery")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

Deploy = Callable[..., Deployment]
Span = dict[str, Any]

#: Runs of each task a test waits for.
RUNS = 3


@pytest.fixture(params=[("redis", "sqlite"), ("rabbitmq", "sqlite")], ids=["redis", "rabbitmq"])
def combination(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The brokers these tests run on (the store is not what they are about)."""
    return request.param  # type: ignore[no-any-return]


def read_spans(path: Path) -> list[Span]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def executions(spans: list[Span], task: str) -> list[Span]:
    return [s for s in spans if s["name"] == f"pyncette execute {task}"]


def complete(spans: list[Span], tasks: list[str]) -> bool:
    """``RUNS`` execution spans of each task, and every span's parent exported too."""
    ids = {s["span_id"] for s in spans}
    return all(len(executions(spans, t)) >= RUNS for t in tasks) and all(
        s["parent_id"] is None or s["parent_id"] in ids for s in spans
    )


@pytest.fixture
def traced(deploy: Deploy, store: StoreConfig, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``traced(**env)`` -> (deployment, spans file): beat and a worker on the traced project,
    the beat_schedule's plain task and one dynamic instance ``e2e.hello`` 'u1' every second."""
    clients: list[Pyncette] = []

    def start(**env: str) -> tuple[Deployment, Path]:
        spans = tmp_path / "spans.jsonl"
        spans.touch()
        d = deploy([], E2E_SPANS=str(spans), E2E_BEAT_SCHEDULE="1", **env)
        d.app_module = "tests.e2e.traced"
        client = Celery("e2e-client")
        client.conf.update(pyncette_url=store.url, pyncette_namespace=store.namespace)
        pyncette = Pyncette(client)
        clients.append(pyncette)

        @pyncette.dynamic_task(name="e2e.hello")
        def hello(context: object) -> None: ...

        pyncette.schedule_task(hello, "u1", schedule="* * * * * *", username="u1")
        d.start_worker()
        d.start_beat()
        d.must_live = {"worker", "beat"}
        return d, spans

    yield start
    for client in clients:
        client.close()


def wait_for_traces(d: Deployment, path: Path, tasks: list[str]) -> list[Span]:
    wait_until(
        d,
        lambda: complete(read_spans(path), tasks),
        60,
        f"{RUNS} traced runs of each of {tasks}, with every parent span exported",
    )
    return read_spans(path)


def chain(span: Span, by_id: dict[str, Span]) -> list[Span]:
    """``span`` and its ancestors, up to the root."""
    found = [span]
    while found[-1]["parent_id"] is not None:
        found.append(by_id[found[-1]["parent_id"]])
    return found


def assert_one_span_per_run(runs: list[Span], d: Deployment, task: str) -> None:
    occurrences = Counter(
        (s["attributes"]["pyncette.instance"], s["attributes"]["pyncette.scheduled_at"])
        for s in runs
    )
    assert set(occurrences.values()) == {1}, f"an occurrence of {task} has two execution spans"
    recorded = Counter(
        datetime.fromisoformat(e["scheduled_at"]) for e in d.events() if e["task"] == task
    )
    for _, scheduled_at in occurrences:
        assert recorded[datetime.fromisoformat(scheduled_at)] == 1


def assert_execution_attributes(span: Span, task: str, instance: str) -> None:
    attributes = span["attributes"]
    assert attributes["pyncette.task"] == task
    assert attributes["pyncette.instance"] == instance
    assert attributes["pyncette.partition"] == 0
    assert datetime.fromisoformat(attributes["pyncette.scheduled_at"]).tzinfo is not None
    assert attributes["pyncette.outcome"] == "success"
    assert span["status"] == "UNSET"


@pytest.mark.parametrize("plain", ["0", "1"], ids=["fast-publish", "plain-publish"])
def test_the_execution_span_continues_beats_send_span(
    traced: Callable[..., tuple[Deployment, Path]], plain: str
) -> None:
    d, path = traced(E2E_PLAIN_PUBLISH=plain)

    spans = wait_for_traces(d, path, ["e2e.hello", "plain-every-second"])

    by_id = {s["span_id"]: s for s in spans}
    beat, worker = d.processes["beat"].pid, d.processes["worker"].pid
    for task, instance in (("e2e.hello", "u1"), ("plain-every-second", "")):
        runs = executions(spans, task)
        for run in runs:
            execute, send, claim = chain(run, by_id)
            assert [execute["kind"], send["name"], claim["name"]] == [
                "CONSUMER",
                f"pyncette send {task}",
                f"pyncette claim {task}",
            ]
            assert {s["trace_id"] for s in (execute, send, claim)} == {run["trace_id"]}
            assert send["pid"] == claim["pid"] == beat
            assert execute["pid"] not in (beat, worker)  # a pool process
            assert send["attributes"]["pyncette.sent"] >= 1
            assert_execution_attributes(execute, task, instance)
        assert_one_span_per_run(runs, d, task)


@pytest.mark.parametrize("combination", [("redis", "sqlite")], ids=["redis"], indirect=True)
def test_beside_the_celery_instrumentation_each_span_is_made_once_in_one_chain(
    traced: Callable[..., tuple[Deployment, Path]],
) -> None:
    d, path = traced(E2E_OTEL_CELERY="1")

    spans = wait_for_traces(d, path, ["e2e.hello", "plain-every-second"])

    by_id = {s["span_id"]: s for s in spans}
    for span in spans:  # no broken parent: each one exported, in the same trace
        if span["parent_id"] is not None:
            assert by_id[span["parent_id"]]["trace_id"] == span["trace_id"]

    runs = executions(spans, "e2e.hello")
    for run in runs:
        names = [s["name"] for s in chain(run, by_id)]
        assert names == [
            "pyncette execute e2e.hello",
            "run/e2e.hello",
            "apply_async/e2e.hello",
            "pyncette send e2e.hello",
            "pyncette claim e2e.hello",
        ]
        assert run["kind"] == "INTERNAL"
        assert_execution_attributes(run, "e2e.hello", "u1")
    assert_one_span_per_run(runs, d, "e2e.hello")
    # no run span of the instrumentation holds two execution spans
    children = Counter(r["parent_id"] for r in runs)
    assert set(children.values()) == {1}

    plain = executions(spans, "plain-every-second")
    for run in plain:
        names = [s["name"] for s in chain(run, by_id)]
        assert names == [
            "pyncette execute plain-every-second",
            "apply_async/e2e.plain",
            "pyncette send plain-every-second",
            "pyncette claim plain-every-second",
        ]
        assert run["kind"] == "CONSUMER"
        assert_execution_attributes(run, "plain-every-second", "")
    assert_one_span_per_run(plain, d, "plain-every-second")
